# Count certificates (DPA, Finite Aggregation, bagging; certsmooth.subsets and
# certsmooth.certificates.{dpa,fa,bagging}): base models on subsets of the poisoned training
# set, one share of the models per job, then the certificate from their votes.
from certsmooth.certifiers import count as count_record


rule train_count:
    input:
        train=lambda wc: f"{poisoned_dir(wc)}/train.npz",
        lib=lib("train-count"),
    output:
        weights=cell_file(count_record.MODEL, "part{part}of{parts}.safetensors"),
        manifest=cell_file(count_record.MODEL, "part{part}of{parts}.json"),
    log:
        log_path("train_count", "{suite}/{exp}/{ntag}/part{part}of{parts}"),
    benchmark:
        bench_path("train_count", "{suite}/{exp}/{ntag}/part{part}of{parts}")
    conda:
        ENV
    threads: config["torch_threads"]
    resources:
        gpu=gpus("count"),
        device=device("count"),
    params:
        threads=config["torch_threads"],
        settings=stage_settings("train"),
        seed=lambda wc: experiment(wc).seed,
    shell:
        "python -m certsmooth train-count --train {input.train} --count {params.settings:q} --seed {params.seed}"
        " --part {wildcards.part} --parts {wildcards.parts} --experiment {wildcards.suite}/{wildcards.exp}"
        " --threads {params.threads} --device {resources.device} --out {output.weights}"
        " --manifest {output.manifest} --log {log}"


rule certify_count:
    input:
        weights=cell_path("weights"),
        manifests=cell_path("manifests"),
        train=lambda wc: f"{poisoned_dir(wc)}/train.npz",
        record=lambda wc: f"{poisoned_dir(wc)}/record.json",
        clean_test=lambda wc: f"{experiment(wc).prepared_dir()}/test.npz",
        triggered_test=lambda wc: f"{poisoned_dir(wc)}/test.npz",
        lib=lib("certify-count"),
    output:
        clean=cell_file(count_record.RUN, "clean.csv"),
        triggered=cell_file(count_record.RUN, "triggered.csv"),
        summary=cell_file(count_record.RUN, "summary.json"),
    log:
        log_path("certify_count", "{suite}/{exp}/{ntag}/{nrun}"),
    benchmark:
        bench_path("certify_count", "{suite}/{exp}/{ntag}/{nrun}")
    conda:
        ENV
    threads: config["torch_threads"]
    resources:
        gpu=gpus("count"),
        device=device("count"),
    params:
        threads=config["torch_threads"],
        settings=stage_settings("certify"),
        seed=lambda wc: experiment(wc).seed,
    shell:
        "python -m certsmooth certify-count --weights {input.weights} --manifests {input.manifests}"
        " --train {input.train} --record {input.record} --clean-test {input.clean_test}"
        " --triggered-test {input.triggered_test} --count {params.settings:q} --seed {params.seed}"
        " --experiment {wildcards.suite}/{wildcards.exp} --threads {params.threads} --device {resources.device}"
        " --out-clean {output.clean} --out-triggered {output.triggered} --out-summary {output.summary}"
        " --log {log}"
