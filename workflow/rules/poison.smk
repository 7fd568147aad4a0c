# Poisoned training sets and triggered test sets (certsmooth.attacks).


rule poison:
    input:
        unpack(prepared),
        lib=lib("attacks", "data"),
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
