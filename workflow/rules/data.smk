# Raw datasets and the prepared .npz format (certsmooth.data).


rule fetch_dataset:
    # Downloads through torchvision (checksums verified by torchvision) and records the
    # raw files' SHA-256. Cheap and network-bound: a local rule on clusters.
    # With `download: false` it only checks that the files are already in place.
    input:
        lib=lib("download"),
    output:
        manifest=f"{config['raw_dir']}/{{dataset}}.manifest.json",
    log:
        "logs/fetch_dataset/{dataset}.log",
    conda:
        ENV
    params:
        raw_dir=lambda wc, output: str(Path(output.manifest).parent),
        offline="" if config["download"] else "--offline",
    shell:
        "python -m certsmooth download {wildcards.dataset} --raw-dir {params.raw_dir} {params.offline}"
        " --manifest {output.manifest} --log {log}"


rule prepare_dataset:
    input:
        manifest=raw_manifest,
        lib=lib("prepare"),
    output:
        train="data/prepared/{dataset}/{classes}/{split}/train.npz",
        test="data/prepared/{dataset}/{classes}/{split}/test.npz",
    log:
        "logs/prepare_dataset/{dataset}/{classes}/{split}.log",
    conda:
        ENV
    params:
        raw_dir=lambda wc: config["raw_dir"],
        out_dir=subpath(output.train, parent=True),
        manifest=lambda wc, input: (
            f"--manifest {input.manifest}" if input.manifest else ""
        ),
    shell:
        "python -m certsmooth prepare --dataset {wildcards.dataset} --classes {wildcards.classes}"
        " --split {wildcards.split} --raw-dir {params.raw_dir} {params.manifest} --out-dir {params.out_dir}"
        " --log {log}"
