# Certification of trained ensembles and per-experiment metrics (certsmooth.certify).


rule certify:
    input:
        unpack(certify_inputs),
        lib=lib("certify"),
    output:
        clean="results/{suite}/{exp}/certify/{ttag}/{scope}-{agg}-a{alpha}/clean.csv",
        triggered="results/{suite}/{exp}/certify/{ttag}/{scope}-{agg}-a{alpha}/triggered.csv",
        summary="results/{suite}/{exp}/certify/{ttag}/{scope}-{agg}-a{alpha}/summary.json",
    log:
        "logs/certify/{suite}/{exp}/{ttag}/{scope}-{agg}-a{alpha}.log",
    benchmark:
        "benchmarks/certify/{suite}/{exp}/{ttag}/{scope}-{agg}-a{alpha}.tsv"
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
        ensemble=lambda wc: json.dumps(
            experiment(wc).settings("certify"), sort_keys=True
        ),
        certify=lambda wc: json.dumps(experiment(wc).cfg["certify"], sort_keys=True),
        sigma=lambda wc: experiment(wc).sigma,
        seed=lambda wc: experiment(wc).seed,
        sigma_files=sigma_flags,
    shell:
        "python -m certsmooth certify --weights {input.weights} --manifests {input.manifests}"
        " --train {input.train} --record {input.record} --clean-test {input.clean_test}"
        " --triggered-test {input.triggered_test} --ensemble {params.ensemble:q}"
        " --certify {params.certify:q} --scope {wildcards.scope} --sigma {params.sigma}"
        " --seed {params.seed} --experiment {wildcards.suite}/{wildcards.exp} --threads {params.threads}"
        " {params.sigma_files} --out-clean {output.clean} --out-triggered {output.triggered}"
        " --out-summary {output.summary} --device {resources.device} --log {log}"


rule metrics:
    input:
        summaries=experiment_summaries,
        lib=lib("metrics"),
    output:
        "results/{suite}/{exp}/metrics.json",
    log:
        "logs/metrics/{suite}/{exp}.log",
    conda:
        ENV
    shell:
        "python -m certsmooth metrics --experiment {wildcards.suite}/{wildcards.exp}"
        " --summaries {input.summaries} --out {output} --log {log}"
