# Cert-SSB's per-sample noise scales (certsmooth.smoothing.certssb): the training-sample
# sigma from a pilot ensemble before training, the test-point sigma from a test-scoring
# ensemble of its own (not the certified models: the bound's models stay independent of it).


rule optimize_train_sigma:
    input:
        train=lambda wc: f"{poisoned_dir(wc)}/train.npz",
        lib=lib("optimize-sigma"),
    output:
        sigma="results/{suite}/{exp}/sigma/{otag}/train_sigma.npz",
        info="results/{suite}/{exp}/sigma/{otag}/train_sigma.json",
        pilot="results/{suite}/{exp}/sigma/{otag}/pilot.safetensors",
        pilot_manifest="results/{suite}/{exp}/sigma/{otag}/pilot.json",
    log:
        "logs/optimize_train_sigma/{suite}/{exp}/{otag}.log",
    benchmark:
        "benchmarks/optimize_train_sigma/{suite}/{exp}/{otag}.tsv"
    conda:
        ENV
    threads: config["torch_threads"]
    resources:
        gpu=gpus("ensemble"),
        device=device("ensemble"),
    params:
        threads=config["torch_threads"],
        ensemble=lambda wc: json.dumps(experiment(wc).settings("sigma"), sort_keys=True),
        sigma_opt=lambda wc: json.dumps(
            experiment(wc).sigma_settings("train"), sort_keys=True
        ),
        sigma=lambda wc: experiment(wc).sigma,
        seed=lambda wc: experiment(wc).seed,
    shell:
        "python -m certsmooth optimize-sigma --stage train --train {input.train}"
        " --ensemble {params.ensemble:q} --sigma-opt {params.sigma_opt:q} --sigma {params.sigma}"
        " --seed {params.seed} --experiment {wildcards.suite}/{wildcards.exp} --threads {params.threads}"
        " --out {output.sigma} --out-info {output.info} --out-pilot {output.pilot}"
        " --out-pilot-manifest {output.pilot_manifest} --device {resources.device} --log {log}"
        " --checkpoint-dir checkpoints/{wildcards.suite}/{wildcards.exp}/sigma/{wildcards.otag}/pilot"


rule optimize_test_sigma:
    input:
        unpack(train_inputs),
        clean_test=lambda wc: f"{experiment(wc).prepared_dir()}/test.npz",
        triggered_test=lambda wc: f"{poisoned_dir(wc)}/test.npz",
        lib=lib("optimize-sigma"),
    output:
        sigma="results/{suite}/{exp}/certify/{ttag}/sigma-{thash}/test_sigma.npz",
        info="results/{suite}/{exp}/certify/{ttag}/sigma-{thash}/test_sigma.json",
    log:
        "logs/optimize_test_sigma/{suite}/{exp}/{ttag}/sigma-{thash}.log",
    benchmark:
        "benchmarks/optimize_test_sigma/{suite}/{exp}/{ttag}/sigma-{thash}.tsv"
    conda:
        ENV
    threads: config["torch_threads"]
    resources:
        gpu=gpus("ensemble"),
        device=device("ensemble"),
    params:
        threads=config["torch_threads"],
        ensemble=lambda wc: json.dumps(experiment(wc).settings("sigma"), sort_keys=True),
        sigma_opt=lambda wc: json.dumps(
            experiment(wc).sigma_settings("test"), sort_keys=True
        ),
        sigma=lambda wc: experiment(wc).sigma,
        seed=lambda wc: experiment(wc).seed,
    shell:
        "python -m certsmooth optimize-sigma --stage test --train {input.train}"
        " --train-sigma {input.sample_sigma}"
        " --clean-test {input.clean_test} --triggered-test {input.triggered_test}"
        " --ensemble {params.ensemble:q} --sigma-opt {params.sigma_opt:q} --sigma {params.sigma}"
        " --seed {params.seed} --experiment {wildcards.suite}/{wildcards.exp} --threads {params.threads}"
        " --out {output.sigma} --out-info {output.info} --device {resources.device} --log {log}"
        " --checkpoint-dir checkpoints/{wildcards.suite}/{wildcards.exp}/certify/{wildcards.ttag}/sigma-{wildcards.thash}/scorer"


rule plot_sigma:
    input:
        train_sigma=lambda wc: f"{experiment(wc).sigma_dir()}/train_sigma.npz",
        test_sigma=lambda wc: f"{experiment(wc).test_sigma_dir()}/test_sigma.npz",
        train=lambda wc: f"{poisoned_dir(wc)}/train.npz",
        lib=lib("plot-sigma"),
    output:
        report(
            "results/{suite}/{exp}/figures/sigma.png",
            caption="../report/sigma.rst",
            category="Cert-SSB noise scales",
            subcategory="{suite}",
            labels={
                "suite": "{suite}",
                "experiment": "{exp}",
                "figure": "sigma histograms",
            },
        ),
    log:
        "logs/plot_sigma/{suite}/{exp}.log",
    conda:
        ENV
    params:
        sigma=lambda wc: experiment(wc).sigma,
        variant=lambda wc: experiment(wc).cfg["sigma_opt"]["variant"],
        dpi=config["figures"]["dpi"],
        context=config["figures"]["context"],
    shell:
        "python -m certsmooth plot-sigma --train-sigma {input.train_sigma} --test-sigma {input.test_sigma}"
        " --train {input.train} --sigma {params.sigma} --variant {params.variant}"
        " --experiment {wildcards.suite}/{wildcards.exp} --out {output} --dpi {params.dpi}"
        " --context {params.context} --log {log}"
