# The control column (certsmooth.certifiers.undefended): one model trained on the whole
# poisoned set, its predictions and summary, in one job.
from certsmooth.certifiers import undefended as undefended_record


rule undefended:
    input:
        train=lambda wc: f"{poisoned_dir(wc)}/train.npz",
        record=lambda wc: f"{poisoned_dir(wc)}/record.json",
        clean_test=lambda wc: f"{experiment(wc).prepared_dir()}/test.npz",
        triggered_test=lambda wc: f"{poisoned_dir(wc)}/test.npz",
        lib=lib("undefended"),
    output:
        model=cell_file(undefended_record.MODEL, "model.safetensors"),
        manifest=cell_file(undefended_record.MODEL, "model.json"),
        clean=cell_file(undefended_record.RUN, "clean.csv"),
        triggered=cell_file(undefended_record.RUN, "triggered.csv"),
        summary=cell_file(undefended_record.RUN, "summary.json"),
    log:
        log_path("undefended", "{suite}/{exp}/{utag}"),
    benchmark:
        bench_path("undefended", "{suite}/{exp}/{utag}")
    wildcard_constraints:
        utag=r"[A-Za-z0-9_.+-]+",
    conda:
        ENV
    threads: config["torch_threads"]
    resources:
        gpu=gpus("undefended"),
        device=device("undefended"),
    params:
        threads=config["torch_threads"],
        model=stage_settings("train"),
        seed=lambda wc: experiment(wc).seed,
    shell:
        "python -m certsmooth undefended --train {input.train} --record {input.record}"
        " --clean-test {input.clean_test} --triggered-test {input.triggered_test} --model {params.model:q}"
        " --seed {params.seed} --experiment {wildcards.suite}/{wildcards.exp} --threads {params.threads}"
        " --device {resources.device} --out-model {output.model} --out-manifest {output.manifest}"
        " --out-clean {output.clean} --out-triggered {output.triggered} --out-summary {output.summary}"
        " --log {log}"
