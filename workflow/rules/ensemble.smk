# The smoothed ensembles, RAB/Wang et al. and Cert-SSB (certsmooth.certifiers.ensemble):
# Cert-SSB's per-sample noise scales (the training-sample sigma from a pilot ensemble before
# training, the test-point sigma from a test-scoring ensemble of its own, not the certified
# models: the bound's models stay independent of it), the M models in jobs of lanes, their
# certification per scope. Epoch checkpoints go to checkpoints/ (not an output: Snakemake
# deletes outputs before a job runs), so a killed or preempted job resumes where it stopped.
from certsmooth.certifiers import ensemble as ensemble_record


rule optimize_train_sigma:
    input:
        train=lambda wc: f"{poisoned_dir(wc)}/train.npz",
        lib=lib("optimize-sigma"),
    output:
        sigma=cell_file(ensemble_record.SIGMA, "train_sigma.npz"),
        info=cell_file(ensemble_record.SIGMA, "train_sigma.json"),
        pilot=cell_file(ensemble_record.SIGMA, "pilot.safetensors"),
        pilot_manifest=cell_file(ensemble_record.SIGMA, "pilot.json"),
    log:
        log_path("optimize_train_sigma", "{suite}/{exp}/{otag}"),
    benchmark:
        bench_path("optimize_train_sigma", "{suite}/{exp}/{otag}")
    conda:
        ENV
    threads: config["torch_threads"]
    resources:
        gpu=gpus("ensemble"),
        device=device("ensemble"),
    params:
        threads=config["torch_threads"],
        ensemble=stage_settings("sigma"),
        sigma_opt=stage_settings("sigma-train"),
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
        unpack(stage_inputs("train")),
        clean_test=lambda wc: f"{experiment(wc).prepared_dir()}/test.npz",
        triggered_test=lambda wc: f"{poisoned_dir(wc)}/test.npz",
        lib=lib("optimize-sigma"),
    output:
        sigma=cell_file(ensemble_record.TEST_SIGMA, "test_sigma.npz"),
        info=cell_file(ensemble_record.TEST_SIGMA, "test_sigma.json"),
    log:
        log_path("optimize_test_sigma", "{suite}/{exp}/{ttag}/sigma-{thash}"),
    benchmark:
        bench_path("optimize_test_sigma", "{suite}/{exp}/{ttag}/sigma-{thash}")
    conda:
        ENV
    threads: config["torch_threads"]
    resources:
        gpu=gpus("ensemble"),
        device=device("ensemble"),
    params:
        threads=config["torch_threads"],
        ensemble=stage_settings("sigma"),
        sigma_opt=stage_settings("sigma-test"),
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
        train_sigma=lambda wc: f"{experiment(wc).paths['sigma']}/train_sigma.npz",
        test_sigma=lambda wc: f"{experiment(wc).paths['test_sigma']}/test_sigma.npz",
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
        log_path("plot_sigma", "{suite}/{exp}"),
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


rule train_partition:
    input:
        unpack(stage_inputs("train")),
        lib=lib("train"),
    output:
        weights=cell_file(ensemble_record.MODELS, "part{part}of{parts}.safetensors"),
        manifest=cell_file(ensemble_record.MODELS, "part{part}of{parts}.json"),
    log:
        log_path("train_partition", "{suite}/{exp}/{ttag}/part{part}of{parts}"),
    benchmark:
        bench_path("train_partition", "{suite}/{exp}/{ttag}/part{part}of{parts}")
    conda:
        ENV
    threads: config["torch_threads"]
    resources:
        gpu=gpus("ensemble"),
        device=device("ensemble"),
    params:
        threads=config["torch_threads"],
        ensemble=stage_settings("train"),
        sigma=lambda wc: experiment(wc).sigma,
        seed=lambda wc: experiment(wc).seed,
        sample_sigma=input_flags(sample_sigma="sample-sigma"),
    shell:
        "python -m certsmooth train --train {input.train} --ensemble {params.ensemble:q}"
        " --sigma {params.sigma} --seed {params.seed} --part {wildcards.part} --parts {wildcards.parts}"
        " --experiment {wildcards.suite}/{wildcards.exp} --threads {params.threads} {params.sample_sigma}"
        " --device {resources.device}"
        " --checkpoint-dir checkpoints/{wildcards.suite}/{wildcards.exp}/{wildcards.ttag}/"
        "part{wildcards.part}of{wildcards.parts}"
        " --out {output.weights} --manifest {output.manifest} --log {log}"


rule certify:
    input:
        unpack(stage_inputs("certify")),
        lib=lib("certify"),
    output:
        clean=cell_file(ensemble_record.RUN, "clean.csv"),
        triggered=cell_file(ensemble_record.RUN, "triggered.csv"),
        summary=cell_file(ensemble_record.RUN, "summary.json"),
    log:
        log_path("certify", "{suite}/{exp}/{ttag}/{scope}-{agg}-a{alpha}"),
    benchmark:
        bench_path("certify", "{suite}/{exp}/{ttag}/{scope}-{agg}-a{alpha}")
    # Cert-SSB runs live one level deeper, under the test-sigma folder sigma-<hash>.
    wildcard_constraints:
        ttag=r"[A-Za-z0-9_.+-]+(/sigma-[0-9a-f]{8})?",
    conda:
        ENV
    threads: config["torch_threads"]
    resources:
        gpu=gpus("ensemble"),
        device=device("ensemble"),
    params:
        threads=config["torch_threads"],
        ensemble=stage_settings("certify"),
        certify=lambda wc: json.dumps(experiment(wc).cfg["certify"], sort_keys=True),
        sigma=lambda wc: experiment(wc).sigma,
        seed=lambda wc: experiment(wc).seed,
        sigma_files=input_flags(sample_sigma="train-sigma", test_sigma="test-sigma"),
    shell:
        "python -m certsmooth certify --weights {input.weights} --manifests {input.manifests}"
        " --train {input.train} --record {input.record} --clean-test {input.clean_test}"
        " --triggered-test {input.triggered_test} --ensemble {params.ensemble:q}"
        " --certify {params.certify:q} --scope {wildcards.scope} --sigma {params.sigma}"
        " --seed {params.seed} --experiment {wildcards.suite}/{wildcards.exp} --threads {params.threads}"
        " {params.sigma_files} --out-clean {output.clean} --out-triggered {output.triggered}"
        " --out-summary {output.summary} --device {resources.device} --log {log}"
