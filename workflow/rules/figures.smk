# Each cell's metrics, and the figures and tables of a suite (certsmooth.plots).


rule metrics:
    input:
        summaries=experiment_summaries,
        lib=lib("metrics"),
    output:
        "results/{suite}/{exp}/metrics.json",
    log:
        log_path("metrics", "{suite}/{exp}"),
    conda:
        ENV
    shell:
        "python -m certsmooth metrics --experiment {wildcards.suite}/{wildcards.exp}"
        " --summaries {input.summaries} --out {output} --log {log}"


rule plot_samples:
    input:
        train=lambda wc: f"{attack_cell(wc).poisoned_dir()}/train.npz",
        record=lambda wc: f"{attack_cell(wc).poisoned_dir()}/record.json",
        clean=lambda wc: attack_prepared(wc)["train"],
        lib=lib("plot-samples"),
    output:
        report(
            "results/{suite}/{attack}/figures/samples.png",
            caption="../report/samples.rst",
            category="Poisoning",
            subcategory="{suite}",
            labels={
                "suite": "{suite}",
                "experiment": "{attack}",
                "figure": "trigger samples",
            },
        ),
    log:
        log_path("plot_samples", "{suite}/{attack}"),
    conda:
        ENV
    params:
        poisoned_dir=lambda wc: attack_cell(wc).poisoned_dir(),
        sigma=lambda wc: attack_cell(wc).sigma,
        seed=lambda wc: attack_cell(wc).seed,
        n_examples=config["figures"]["n_examples"],
        dpi=config["figures"]["dpi"],
        context=config["figures"]["context"],
    shell:
        "python -m certsmooth plot-samples --poisoned-dir {params.poisoned_dir} --prepared-train {input.clean}"
        " --out {output} --sigma {params.sigma} --seed {params.seed} --n-examples {params.n_examples}"
        " --dpi {params.dpi} --context {params.context} --log {log}"


rule plot_curves:
    input:
        runs=lambda wc: [
            f"{d}/{f}"
            for d in certify_runs(wc.suite)
            for f in ("clean.csv", "triggered.csv", "summary.json")
        ],
        lib=lib("plot-curves"),
    output:
        png=report(
            SUITE_FILES["curves"],
            caption="../report/certified_accuracy.rst",
            category="Certification",
            subcategory="{suite}",
            labels={"suite": "{suite}", "figure": "certified accuracy"},
        ),
        csv=SUITE_FILES["summary_csv"],
        md=report(
            SUITE_FILES["summary_md"],
            caption="../report/summary.rst",
            category="Certification",
            subcategory="{suite}",
            labels={"suite": "{suite}", "figure": "summary table"},
        ),
        metrics=SUITE_FILES["metrics"],
        curves=SUITE_FILES["curves_csv"],
    log:
        log_path("plot_curves", "{suite}"),
    conda:
        ENV
    params:
        runs=lambda wc: certify_runs(wc.suite),
        settings=run_settings,
        dpi=config["figures"]["dpi"],
        context=config["figures"]["context"],
    shell:
        "python -m certsmooth plot-curves --suite {wildcards.suite} --runs {params.runs}"
        " --out-png {output.png} --out-csv {output.csv} --out-md {output.md}"
        " --out-metrics {output.metrics} --out-curves {output.curves}"
        " --dpi {params.dpi} --context {params.context} --log {log}"


rule plot_attacks:
    input:
        summaries=lambda wc: [f"{d}/summary.json" for d in certify_runs(wc.suite)],
        lib=lib("plot-attacks"),
    output:
        matrix=report(
            SUITE_FILES["matrix"],
            caption="../report/attack_matrix.rst",
            category="Attacks",
            subcategory="{suite}",
            labels={"suite": "{suite}", "figure": "attack x certifier matrix"},
        ),
        bars=report(
            SUITE_FILES["effects"],
            caption="../report/attack_effects.rst",
            category="Attacks",
            subcategory="{suite}",
            labels={"suite": "{suite}", "figure": "attack effects"},
        ),
        csv=SUITE_FILES["effects_csv"],
        md=SUITE_FILES["effects_md"],
    log:
        log_path("plot_attacks", "{suite}"),
    conda:
        ENV
    params:
        layout=lambda wc: json.dumps(matrix_layout(wc.suite), sort_keys=True),
        settings=run_settings,
        dpi=config["figures"]["dpi"],
        context=config["figures"]["context"],
    shell:
        "python -m certsmooth plot-attacks --suite {wildcards.suite} --layout {params.layout:q}"
        " --summaries {input.summaries} --out-matrix {output.matrix} --out-bars {output.bars}"
        " --out-csv {output.csv} --out-md {output.md} --dpi {params.dpi} --context {params.context} --log {log}"
