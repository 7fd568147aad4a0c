# Poisoned training sets and triggered test sets (certsmooth.attacks).


rule poison:
    input:
        unpack(attack_prepared),
        lib=lib("poison"),
    output:
        train="data/poisoned/{suite}/{attack}/{tag}/train.npz",
        test="data/poisoned/{suite}/{attack}/{tag}/test.npz",
        trigger="data/poisoned/{suite}/{attack}/{tag}/trigger.npz",
        poisons="data/poisoned/{suite}/{attack}/{tag}/poisons.csv",
        record="data/poisoned/{suite}/{attack}/{tag}/record.json",
    log:
        log_path("poison", "{suite}/{attack}/{tag}"),
    wildcard_constraints:
        tag=r"(?!bilevel-)[A-Za-z0-9_.+-]+",
    conda:
        ENV
    params:
        attack=lambda wc: json.dumps(attack_cell(wc).cfg["attack"], sort_keys=True),
        seed=lambda wc: attack_cell(wc).seed,
        experiment=lambda wc: f"{wc.suite}/{wc.attack}",
        out_dir=subpath(output.record, parent=True),
    shell:
        "python -m certsmooth poison --train {input.train} --test {input.test} --attack {params.attack:q}"
        " --seed {params.seed} --experiment {params.experiment}"
        " --out-dir {params.out_dir} --log {log}"


rule bilevel_poison:
    input:
        train=lambda wc: f"{attack_cell(wc).prepared_dir()}/train.npz",
        test=lambda wc: f"{attack_cell(wc).prepared_dir()}/test.npz",
        lib=lib("bilevel-poison"),
    output:
        train="data/poisoned/{suite}/{attack}/{btag}/train.npz",
        test="data/poisoned/{suite}/{attack}/{btag}/test.npz",
        trigger="data/poisoned/{suite}/{attack}/{btag}/trigger.npz",
        poisons="data/poisoned/{suite}/{attack}/{btag}/poisons.csv",
        record="data/poisoned/{suite}/{attack}/{btag}/record.json",
    log:
        log_path("bilevel_poison", "{suite}/{attack}/{btag}"),
    benchmark:
        bench_path("bilevel_poison", "{suite}/{attack}/{btag}")
    conda:
        ENV
    threads: config["torch_threads"]
    resources:
        gpu=gpus("bilevel"),
        device=device("bilevel"),
    params:
        threads=config["torch_threads"],
        attack=lambda wc: json.dumps(attack_cell(wc).attack_settings(), sort_keys=True),
        sigma=lambda wc: attack_cell(wc).attack_sigma,
        seed=lambda wc: attack_cell(wc).seed,
        experiment=lambda wc: f"{wc.suite}/{wc.attack}",
        out_dir=subpath(output.record, parent=True),
    shell:
        "python -m certsmooth bilevel-poison --train {input.train} --test {input.test} --attack {params.attack:q}"
        " --sigma {params.sigma} --seed {params.seed} --experiment {params.experiment} --threads {params.threads}"
        " --out-dir {params.out_dir} --device {resources.device} --log {log}"
