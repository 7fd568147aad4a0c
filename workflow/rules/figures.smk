# Figures (certsmooth.plots).


rule plot_samples:
    input:
        train=lambda wc: f"{poisoned_dir(wc)}/train.npz",
        record=lambda wc: f"{poisoned_dir(wc)}/record.json",
        clean=lambda wc: prepared(wc)["train"],
        lib=lib("plots", "attacks", "data"),
    output:
        report(
            "results/{suite}/{exp}/figures/samples.png",
            caption="../report/samples.rst",
            category="Poisoning",
            subcategory="{suite}",
            labels={
                "suite": "{suite}",
                "experiment": "{exp}",
                "figure": "trigger samples",
            },
        ),
    log:
        "logs/plot_samples/{suite}/{exp}.log",
    conda:
        ENV
    params:
        poisoned_dir=poisoned_dir,
        sigma=lambda wc: experiment(wc).cfg["smoothing"]["sigma"],
        seed=lambda wc: experiment(wc).seed,
        n_examples=config["figures"]["n_examples"],
        dpi=config["figures"]["dpi"],
        context=config["figures"]["context"],
    shell:
        "python -m certsmooth plot-samples --poisoned-dir {params.poisoned_dir} --prepared-train {input.clean}"
        " --out {output} --sigma {params.sigma} --seed {params.seed} --n-examples {params.n_examples}"
        " --dpi {params.dpi} --context {params.context} --log {log}"
