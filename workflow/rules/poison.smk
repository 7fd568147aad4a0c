# Poisoned training sets and triggered test sets (certsmooth.attacks).


rule poison:
    input:
        unpack(prepared),
        lib=lib("poison"),
    output:
        train="data/poisoned/{suite}/{exp}/{tag}/train.npz",
        test="data/poisoned/{suite}/{exp}/{tag}/test.npz",
        trigger="data/poisoned/{suite}/{exp}/{tag}/trigger.npz",
        poisons="data/poisoned/{suite}/{exp}/{tag}/poisons.csv",
        record="data/poisoned/{suite}/{exp}/{tag}/record.json",
    log:
        "logs/poison/{suite}/{exp}/{tag}.log",
    conda:
        ENV
    params:
        attack=lambda wc: json.dumps(experiment(wc).cfg["attack"], sort_keys=True),
        seed=lambda wc: experiment(wc).seed,
        out_dir=subpath(output.record, parent=True),
    shell:
        "python -m certsmooth poison --train {input.train} --test {input.test} --attack {params.attack:q}"
        " --seed {params.seed} --experiment {wildcards.suite}/{wildcards.exp}"
        " --out-dir {params.out_dir} --log {log}"


rule bilevel_poison:
    input:
        train=lambda wc: f"{bilevel_experiment(wc).prepared_dir()}/train.npz",
        test=lambda wc: f"{bilevel_experiment(wc).prepared_dir()}/test.npz",
        lib=lib("bilevel-poison"),
    output:
        train="data/poisoned/{suite}/_bilevel/{btag}/train.npz",
        test="data/poisoned/{suite}/_bilevel/{btag}/test.npz",
        trigger="data/poisoned/{suite}/_bilevel/{btag}/trigger.npz",
        poisons="data/poisoned/{suite}/_bilevel/{btag}/poisons.csv",
        record="data/poisoned/{suite}/_bilevel/{btag}/record.json",
    log:
        "logs/bilevel_poison/{suite}/{btag}.log",
    benchmark:
        "benchmarks/bilevel_poison/{suite}/{btag}.tsv"
    conda:
        ENV
    threads: config["torch_threads"]
    resources:
        gpu=lambda wc: int(bilevel_experiment(wc).device("bilevel").startswith("cuda")),
        device=lambda wc: bilevel_experiment(wc).device("bilevel"),
    params:
        threads=config["torch_threads"],
        attack=lambda wc: json.dumps(
            bilevel_experiment(wc).attack_settings(), sort_keys=True
        ),
        sigma=lambda wc: bilevel_experiment(wc).bilevel_sigma,
        seed=lambda wc: bilevel_experiment(wc).seed,
        experiment=lambda wc: bilevel_experiment(wc).id,
        out_dir=subpath(output.record, parent=True),
    shell:
        "python -m certsmooth bilevel-poison --train {input.train} --test {input.test} --attack {params.attack:q}"
        " --sigma {params.sigma} --seed {params.seed} --experiment {params.experiment} --threads {params.threads}"
        " --out-dir {params.out_dir} --device {resources.device} --log {log}"
