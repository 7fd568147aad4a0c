# Test-time randomized smoothing (Cohen et al.; certsmooth.certificates.cohen) as a certifier:
# one base classifier trained with Gaussian augmentation, CERTIFY/PREDICT in chunks.
from certsmooth.certifiers import cohen as cohen_record


rule train_cohen:
    input:
        train=lambda wc: f"{poisoned_dir(wc)}/train.npz",
        lib=lib("train-cohen"),
    output:
        weights=cell_file(cohen_record.MODEL, "model.safetensors"),
        manifest=cell_file(cohen_record.MODEL, "model.json"),
    log:
        log_path("train_cohen", "{suite}/{exp}/{ctag}"),
    benchmark:
        bench_path("train_cohen", "{suite}/{exp}/{ctag}")
    conda:
        ENV
    threads: config["torch_threads"]
    resources:
        gpu=gpus("cohen"),
        device=device("cohen"),
    params:
        threads=config["torch_threads"],
        cohen=stage_settings("train"),
        sigma=lambda wc: experiment(wc).sigma,
        seed=lambda wc: experiment(wc).seed,
    shell:
        "python -m certsmooth train-cohen --train {input.train} --cohen {params.cohen:q} --sigma {params.sigma}"
        " --seed {params.seed} --experiment {wildcards.suite}/{wildcards.exp} --threads {params.threads}"
        " --checkpoint-dir checkpoints/{wildcards.suite}/{wildcards.exp}/cohen/{wildcards.ctag}"
        " --out {output.weights} --manifest {output.manifest} --device {resources.device} --log {log}"


rule certify_cohen_chunk:
    input:
        weights=cell_file(cohen_record.MODEL, "model.safetensors"),
        manifest=cell_file(cohen_record.MODEL, "model.json"),
        clean_test=lambda wc: f"{experiment(wc).prepared_dir()}/test.npz",
        triggered_test=lambda wc: f"{poisoned_dir(wc)}/test.npz",
        lib=lib("certify-cohen"),
    output:
        cell_file(cohen_record.RUN, "chunk{chunk}of{chunks}.csv"),
    log:
        log_path("certify_cohen", "{suite}/{exp}/{ctag}/{crun}/chunk{chunk}of{chunks}"),
    benchmark:
        bench_path(
            "certify_cohen", "{suite}/{exp}/{ctag}/{crun}/chunk{chunk}of{chunks}"
        )
    conda:
        ENV
    threads: config["torch_threads"]
    resources:
        gpu=gpus("cohen"),
        device=device("cohen"),
    params:
        threads=config["torch_threads"],
        cohen=stage_settings("certify"),
        sigma=lambda wc: experiment(wc).sigma,
        seed=lambda wc: experiment(wc).seed,
    shell:
        "python -m certsmooth certify-cohen --weights {input.weights} --manifest {input.manifest}"
        " --clean-test {input.clean_test} --triggered-test {input.triggered_test} --cohen {params.cohen:q}"
        " --sigma {params.sigma} --seed {params.seed} --chunk {wildcards.chunk} --chunks {wildcards.chunks}"
        " --threads {params.threads} --device {resources.device} --out {output} --log {log}"


rule merge_cohen:
    input:
        chunks=cell_path("chunks"),
        record=lambda wc: f"{poisoned_dir(wc)}/record.json",
        triggered_test=lambda wc: f"{poisoned_dir(wc)}/test.npz",
        lib=lib("merge-cohen"),
    output:
        clean=cell_file(cohen_record.RUN, "clean.csv"),
        triggered=cell_file(cohen_record.RUN, "triggered.csv"),
        summary=cell_file(cohen_record.RUN, "summary.json"),
    log:
        log_path("merge_cohen", "{suite}/{exp}/{ctag}/{crun}"),
    conda:
        ENV
    params:
        cohen=stage_settings("merge"),
        sigma=lambda wc: experiment(wc).sigma,
    shell:
        "python -m certsmooth merge-cohen --chunks {input.chunks} --record {input.record}"
        " --triggered-test {input.triggered_test} --cohen {params.cohen:q} --sigma {params.sigma}"
        " --experiment {wildcards.suite}/{wildcards.exp} --out-clean {output.clean}"
        " --out-triggered {output.triggered} --out-summary {output.summary} --log {log}"
