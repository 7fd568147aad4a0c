# Raw datasets and the prepared .npz format (certsmooth.data).


rule fetch_dataset:
    # Downloads through torchvision (checksums verified by torchvision) and records the
    # raw files' SHA-256. Cheap and network-bound: a local rule on clusters.
    # With `download: false` it only checks that the files are already in place. For a
    # dataset of the user's (datasets: in params.yaml) it records the checksum of its files.
    input:
        lib=lib("download"),
        files=user_dataset_files,
    output:
        manifest=f"{config['raw_dir']}/{{dataset}}.manifest.json",
    log:
        log_path("fetch_dataset", "{dataset}"),
    conda:
        ENV
    params:
        raw_dir=lambda wc, output: str(Path(output.manifest).parent),
        offline="" if config["download"] else "--offline",
        user=user_dataset_flags,
    shell:
        "python -m certsmooth download {wildcards.dataset} --raw-dir {params.raw_dir} {params.offline}"
        " {params.user} --manifest {output.manifest} --log {log}"


rule prepare_dataset:
    input:
        manifest=raw_manifest,
        lib=lib("prepare"),
    output:
        train="data/prepared/{dataset}/{classes}/{split}/train.npz",
        test="data/prepared/{dataset}/{classes}/{split}/test.npz",
    log:
        log_path("prepare_dataset", "{dataset}/{classes}/{split}"),
    conda:
        ENV
    params:
        raw_dir=lambda wc: config["raw_dir"],
        out_dir=subpath(output.train, parent=True),
        manifest=lambda wc, input: (
            f"--manifest {input.manifest}" if input.manifest else ""
        ),
        user=user_dataset_flags,
    shell:
        "python -m certsmooth prepare --dataset {wildcards.dataset} --classes {wildcards.classes}"
        " --split {wildcards.split} --raw-dir {params.raw_dir} {params.manifest} --out-dir {params.out_dir}"
        " {params.user} --log {log}"
