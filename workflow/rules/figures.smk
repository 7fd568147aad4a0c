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
            category="2. Certified accuracy",
            subcategory="{suite}",
            labels={"suite": "{suite}", "figure": "certified accuracy"},
        ),
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
        " --out-png {output.png} --out-curves {output.curves}"
        " --dpi {params.dpi} --context {params.context} --log {log}"


rule plot_attacks:
    input:
        runs=lambda wc: [
            f"{d}/{f}"
            for d in certify_runs(wc.suite)
            for f in ("clean.csv", "triggered.csv", "summary.json")
        ],
        lib=lib("plot-attacks"),
    output:
        matrix=report(
            SUITE_FILES["matrix"],
            caption="../report/attack_matrix.rst",
            category="1. Attack x certifier matrix",
            subcategory="{suite}",
            labels={"suite": "{suite}", "figure": "attack x certifier matrix"},
        ),
        effects=report(
            SUITE_FILES["effects"],
            caption="../report/attack_effects.rst",
            category="1. Attack x certifier matrix",
            subcategory="{suite}",
            labels={"suite": "{suite}", "figure": "attack effects"},
        ),
        board_csv=SUITE_FILES["leaderboard_csv"],
        board_md=SUITE_FILES["leaderboard_md"],
        cells=SUITE_FILES["cells"],
        matrix_csv=SUITE_FILES["matrix_csv"],
        metrics=directory(SUITE_FILES["metrics"]),
    log:
        log_path("plot_attacks", "{suite}"),
    conda:
        ENV
    params:
        runs=lambda wc: certify_runs(wc.suite),
        layout=lambda wc: json.dumps(matrix_layout(wc.suite), sort_keys=True),
        settings=run_settings,
        dpi=config["figures"]["dpi"],
        context=config["figures"]["context"],
    shell:
        "python -m certsmooth plot-attacks --suite {wildcards.suite} --layout {params.layout:q}"
        " --runs {params.runs} --out-matrix {output.matrix} --out-effects {output.effects}"
        " --out-leaderboard-csv {output.board_csv} --out-leaderboard-md {output.board_md}"
        " --out-cells {output.cells} --out-matrix-csv {output.matrix_csv} --out-metrics {output.metrics}"
        " --dpi {params.dpi} --context {params.context} --log {log}"
