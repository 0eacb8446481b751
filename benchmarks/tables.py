"""Markdown tables of the benchmarks' JSON results (what the README shows), from the files.

python benchmarks/tables.py            # prints the train step, estimator and memory tables
"""

from __future__ import annotations

import json

from common import RESULTS


def load(name: str) -> dict | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def train_step_table(r: dict) -> str:
    lines = [
        f"Matmul rate (float32, 2048^3, same run): {r['matmul_gflops_f32_2048']:.0f} GFLOP/s; "
        f"PyTorch {r['torch']}, {r['torch_threads']} thread; {r['date']}.",
        "",
        "| model | batch | k | elbo_lab ms | eager ms | compile ms | x eager | x compile "
        "| % of matmul | profile: no binarize / rbg / Adam / matmuls alone (ms) | peak MB |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in r["rows"]:
        p = row.get("profile", {})
        prof = (
            " / ".join(
                f"{p[k]:.3f}"
                for k in (
                    "no_binarize_ms",
                    "unsafe_rbg_prng_ms",
                    "adam_update_ms",
                    "matmuls_alone_ms",
                )
            )
            if p
            else ""
        )
        lines.append(
            f"| {row['model']} | {row['batch']} | {row['k']} | {row['jax_ms']:.3f} | "
            f"{row['torch_eager_ms']:.3f} | {row['torch_compile_ms']:.3f} | "
            f"{row['speedup_vs_torch_eager']:.2f} | {row['speedup_vs_torch_compile']:.2f} | "
            f"{100 * row['fraction_of_matmul']:.0f} | {prof} | {row['maxrss_mb']:.0f} |"
        )
    lines.append("")
    lines += [f"- {t}: {'met' if ok else 'not met'}" for t, ok in r["targets_met"].items()]
    return "\n".join(lines)


def estimators_table(r: dict) -> str:
    lines = ["| estimator | ms per image | GFLOP/s (XLA count) | % of matmul | peak MB |"]
    lines.append("|---|---|---|---|---|")
    for row in r["iwae"]:
        lines.append(
            f"| IWAE-5000 (rows_per_chunk {row['rows_per_chunk']}) | "
            f"{1e3 * row['seconds_per_image']:.1f} | {row['gflops']:.1f} | "
            f"{100 * row['fraction_of_matmul']:.0f} | {row['maxrss_mb_after']:.0f} |"
        )
    for row in r["ais"]:
        lines.append(
            f"| AIS T={row['temperatures']} C={row['chains']} L={row['num_leapfrog']} | "
            f"{1e3 * row['seconds_per_image']:.0f} | {row['gflops']:.1f} | "
            f"{100 * row['fraction_of_matmul']:.0f} | {row['maxrss_mb_after']:.0f} |"
        )
    lines.append("")
    lines += [f"- {t}: {'met' if ok else 'not met'}" for t, ok in r.get("targets_met", {}).items()]
    return "\n".join(lines)


def memory_table(r: dict) -> str:
    lines = ["| evaluator | images | peak MB | seconds |", "|---|---|---|---|"]
    for row in r["rows"]:
        lines.append(
            f"| {row['evaluator']} | {row['images']} | {row['maxrss_mb']:.0f} | "
            f"{row['seconds']:.0f} |"
        )
    growth = r["peak_growth_mb_per_1000_images"]
    lines.append("")
    lines.append(
        "Peak growth per 1,000 images: " + ", ".join(f"{k} {v:.1f} MB" for k, v in growth.items())
    )
    return "\n".join(lines)


def main() -> None:
    for name, table in (
        ("train_step", train_step_table),
        ("estimators", estimators_table),
        ("memory", memory_table),
    ):
        found = load(name)
        if found is not None:
            print(f"## {name}\n\n{table(found)}\n")


if __name__ == "__main__":
    main()
