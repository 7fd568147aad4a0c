# Training of smoothed ensembles, one partition of lanes per job (certsmooth.smoothing).
# Epoch checkpoints go to checkpoints/ (not an output: Snakemake deletes outputs before a
# job runs), so a killed or preempted job resumes where it stopped; removed on success.


rule train_partition:
    input:
        unpack(train_inputs),
        lib=lib("train"),
    output:
        weights="results/{suite}/{exp}/models/{ttag}/part{part}of{parts}.safetensors",
        manifest="results/{suite}/{exp}/models/{ttag}/part{part}of{parts}.json",
    log:
        "logs/train_partition/{suite}/{exp}/{ttag}/part{part}of{parts}.log",
    benchmark:
        "benchmarks/train_partition/{suite}/{exp}/{ttag}/part{part}of{parts}.tsv"
    conda:
        ENV
    threads: config["torch_threads"]
    resources:
        gpu=gpus("ensemble"),
        device=device("ensemble"),
    params:
        threads=config["torch_threads"],
        ensemble=lambda wc: json.dumps(experiment(wc).settings("train"), sort_keys=True),
        sigma=lambda wc: experiment(wc).sigma,
        seed=lambda wc: experiment(wc).seed,
        sample_sigma=lambda wc, input: (
            f"--sample-sigma {input.sample_sigma}"
            if "sample_sigma" in input.keys()
            else ""
        ),
    shell:
        "python -m certsmooth train --train {input.train} --ensemble {params.ensemble:q}"
        " --sigma {params.sigma} --seed {params.seed} --part {wildcards.part} --parts {wildcards.parts}"
        " --experiment {wildcards.suite}/{wildcards.exp} --threads {params.threads} {params.sample_sigma}"
        " --device {resources.device}"
        " --checkpoint-dir checkpoints/{wildcards.suite}/{wildcards.exp}/{wildcards.ttag}/"
        "part{wildcards.part}of{wildcards.parts}"
        " --out {output.weights} --manifest {output.manifest} --log {log}"
