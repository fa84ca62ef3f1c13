#!/usr/bin/env python3
"""Generate the synthetic customer-churn sample, data/sample/churn/churn.csv.

The platform's fourth example, next to the three tables exported from scikit-learn
(scripts/export_sample_data.py), which are all numeric with the label last. This one looks like
a CRM export instead, to exercise what those cannot:

* categorical features (``plan``, ``region``, ``contract``) next to numeric ones
  (``tenure_months``, ``monthly_charges``, ``support_calls``);
* an id (``customer_id``), a date (``signup_date``) and fake PII (``email``; ``phone`` in
  Ofcom's drama range, +44 7700 900000-900999) that the ETL must drop, never train on;
* a text label (``churned``: ``yes``/``no``) in the middle of the row rather than first or last;
* missing values to clean: about 2 % of ``monthly_charges`` are empty cells and about 1 % of
  ``region`` read ``NaN``.

Churn is Bernoulli(sigmoid(score)): a monthly contract is much riskier than an annual one, basic
plans riskier than premium, every support call adds risk, tenure removes it, charges above the
plan's list price and the region add a little. About 30 % churn; a logistic model on one-hot
categoricals reaches a ROC AUC of about 0.87, so there is signal but not a perfect fit.

Deterministic: ``numpy.random.default_rng(7)``, so every run writes the same bytes (1,000 rows,
header first, ``\\n`` line endings; tests/test_churn_example.py re-runs it and compares).

    python scripts/make_churn_data.py [OUTPUT_CSV]           # (re)write the file
    python scripts/make_churn_data.py [OUTPUT_CSV] --check   # exit 1 if the file differs
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
from datetime import date, timedelta
from pathlib import Path

import numpy as np

DEFAULT_OUTPUT = Path(__file__).resolve().parent.parent / "data" / "sample" / "churn" / "churn.csv"
SEED = 7
ROWS = 1000
COLUMNS = ("customer_id", "signup_date", "email", "plan", "region", "churned", "tenure_months",
           "monthly_charges", "support_calls", "phone", "contract")
PLANS = ("basic", "standard", "premium")
REGIONS = ("north", "south", "east", "west")
CONTRACTS = ("monthly", "annual")
FIRST_SIGNUP, LAST_SIGNUP = date(2019, 1, 1), date(2024, 12, 31)
AS_OF = date(2025, 1, 1)  # tenure is counted up to this day: a 2019-01-01 signup has 72 months
MISSING_CHARGES = 20  # 2 % of the rows: an empty monthly_charges cell
MISSING_REGIONS = 10  # 1 % of the rows: region written as NaN

# Monthly list price per plan (GBP) and the plan's share of customers.
PLAN_PRICE = {"basic": 25.0, "standard": 55.0, "premium": 89.0}
PLAN_SHARE = (0.45, 0.35, 0.20)
REGION_SHARE = (0.30, 0.25, 0.25, 0.20)
# Log-odds of churning: an intercept, then what each feature adds.
INTERCEPT = -1.75
CONTRACT_RISK = {"monthly": 2.1, "annual": -0.8}
PLAN_RISK = {"basic": 0.35, "standard": 0.0, "premium": -0.35}
REGION_RISK = {"north": 0.0, "south": 0.2, "east": -0.15, "west": 0.1}
SUPPORT_CALL_RISK = 0.45  # per call
TENURE_RISK = -0.045  # per month
SURCHARGE_RISK = 0.03  # per pound above the plan's list price


def _months_between(start: date, end: date) -> int:
    return (end.year - start.year) * 12 + (end.month - start.month) - (end.day < start.day)


def generate(seed: int = SEED, rows: int = ROWS) -> list[list[str]]:
    """The table as text cells, header first."""
    rng = np.random.default_rng(seed)
    span = (LAST_SIGNUP - FIRST_SIGNUP).days + 1
    signups = [FIRST_SIGNUP + timedelta(days=int(day)) for day in rng.integers(0, span, rows)]
    tenure = np.array([min(max(_months_between(signup, AS_OF), 1), 72) for signup in signups])
    plans = rng.choice(PLANS, size=rows, p=PLAN_SHARE)
    regions = rng.choice(REGIONS, size=rows, p=REGION_SHARE)
    # Long-standing customers more often moved to an annual contract.
    contracts = np.where(rng.random(rows) < 0.25 + 0.4 * tenure / 72, "annual", "monthly")
    list_price = np.array([PLAN_PRICE[plan] for plan in plans])
    charges = np.round(np.maximum(list_price + rng.normal(0.0, 6.0, rows), 10.0), 2)
    support_calls = np.minimum(rng.poisson(np.where(plans == "basic", 2.0, 1.4)), 10)

    score = (INTERCEPT + np.array([CONTRACT_RISK[c] for c in contracts]) + np.array([PLAN_RISK[p] for p in plans])
             + np.array([REGION_RISK[r] for r in regions]) + SUPPORT_CALL_RISK * support_calls
             + TENURE_RISK * tenure + SURCHARGE_RISK * (charges - list_price))
    churned = rng.random(rows) < 1.0 / (1.0 + np.exp(-score))

    no_charge = set(rng.choice(rows, MISSING_CHARGES, replace=False).tolist())
    no_region = set(rng.choice(rows, MISSING_REGIONS, replace=False).tolist())
    phones = 900000 + rng.permutation(rows)  # one distinct number per customer (up to 1,000)

    table = [list(COLUMNS)]
    for i in range(rows):
        number = f"{i + 1:05d}"
        table.append([
            f"C{number}", signups[i].isoformat(), f"user{number}@example.com", str(plans[i]),
            "NaN" if i in no_region else str(regions[i]), "yes" if churned[i] else "no", str(int(tenure[i])),
            "" if i in no_charge else f"{charges[i]:.2f}", str(int(support_calls[i])),
            f"+44 7700 {int(phones[i])}", str(contracts[i]),
        ])
    return table


def render(seed: int = SEED, rows: int = ROWS) -> bytes:
    """The CSV file's bytes."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(generate(seed, rows))
    return buffer.getvalue().encode("utf-8")


def write(path: Path = DEFAULT_OUTPUT) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(render())
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", nargs="?", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--check", action="store_true", help="exit 1 if the file differs from what would be written")
    args = parser.parse_args(argv)
    if args.check:
        if not args.output.is_file() or args.output.read_bytes() != render():
            print(f"{args.output} differs from what {Path(__file__).name} writes: re-run it", file=sys.stderr)
            return 1
        print(f"{args.output} is up to date")
        return 0
    write(args.output)
    print(f"wrote {args.output} ({ROWS} rows)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
