"""Group statistics of a per-session behaviour table (:func:`~dbm_lightning.summarise.budget.
time_budget`): conditions compared within each day, and a condition x day mixed model across
days, with Benjamini-Hochberg correction and effect sizes.

The unit of every test is the mouse: sessions of the same mouse on the same day are averaged
first (:func:`mouse_day_values`), so that several trials of a day never count as several mice.

- :func:`within_day_tests`: for each behaviour, day and pair of conditions, a two-sided
  Mann-Whitney U test (``test="mannwhitney"``, the default: few mice per group, shares that
  need not be normal) with the rank-biserial correlation as effect size, or Welch's t test
  (``test="welch"``) with Hedges' g. Every pair of conditions is compared when there are more
  than two. The p values of one call are corrected together (``p_bh``).
- :func:`mixed_model_tests`: for each behaviour, ``value ~ condition * day`` with a random
  intercept per mouse (``statsmodels`` MixedLM, fitted by maximum likelihood), day as a number:
  the interaction asks whether the conditions' trends over the days differ. Its p value is the
  likelihood-ratio test against ``value ~ condition + day`` (one test per behaviour, whatever
  the number of conditions); the effect size is the difference in slope per day from the
  reference condition, with its 95 % CI, and that difference over the whole span of days.
  The condition's main effect is tested too: ``condition + day`` against ``day``.

With few mice the likelihood-ratio tests and the Wald intervals are approximations that tend
to be too optimistic; mice without a value (e.g. a latency when they never showed the
behaviour) are left out of the cell, and ``n_a`` / ``n_b`` / ``mice`` say how many remain.
"""

from __future__ import annotations

__all__ = [
    "TESTS",
    "bh_correct",
    "mixed_model_tests",
    "mouse_day_values",
    "untestable_reason",
    "within_day_tests",
]

import itertools
import warnings

import numpy as np
import pandas as pd
from scipy import stats

TESTS = ("mannwhitney", "welch")
"""The within-day tests: Mann-Whitney U (rank-biserial r) or Welch's t (Hedges' g)."""

TEST_NAMES = {"mannwhitney": "Mann-Whitney U", "welch": "Welch's t"}
EFFECT_NAMES = {"mannwhitney": "rank-biserial r", "welch": "Hedges' g"}
FIT_METHODS = ["bfgs", "powell", "lbfgs"]
"""MixedLM optimisers, tried in turn until one converges (lbfgs alone, statsmodels' default,
fails on a singular Hessian when the mice hardly differ)."""


def bh_correct(p: np.ndarray | pd.Series) -> np.ndarray:
    """Benjamini-Hochberg adjusted p values; NaN entries stay NaN and are not counted."""
    from statsmodels.stats.multitest import multipletests

    p = np.asarray(p, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    if ok.any():
        out[ok] = multipletests(p[ok], method="fdr_bh")[1]
    return out


def mouse_day_values(table: pd.DataFrame, measure: str = "percent_time") -> pd.DataFrame:
    """``measure`` per mouse, day, condition and behaviour: the mean over that mouse's
    sessions of the day (NaN sessions, e.g. a duration without a bout, left out)."""
    for column in ("mouse", "day", "condition", "behaviour", measure):
        if column not in table:
            raise KeyError(f"the table has no column {column!r}")
    keys = ["behaviour", "condition", "day", "mouse"]
    data = table.dropna(subset=["mouse", "day", "condition"])
    out = data.groupby(keys, sort=True, observed=True)[measure].mean().reset_index()
    out = out.rename(columns={measure: "value"})
    out["day"] = out["day"].astype(int)
    return out


def untestable_reason(values: pd.DataFrame) -> str | None:
    """Why :func:`mouse_day_values` output cannot be compared across conditions (``None``
    when it can): fewer than two conditions, or a condition with fewer than two mice."""
    if values.empty:
        return "no session has a mouse, a day and a condition"
    mice = values.groupby("condition")["mouse"].nunique()
    if len(mice) < 2:
        return f"one condition only ({', '.join(map(str, mice.index))}): nothing to compare"
    few = mice[mice < 2]
    if len(few):
        return f"condition(s) {', '.join(map(str, few.index))} have fewer than two mice"
    return None


def _compare(a: np.ndarray, b: np.ndarray, test: str) -> tuple[float, float, float]:
    """``(statistic, p, effect size)`` of ``a`` against ``b``; effect > 0 when ``a`` is larger."""
    if test == "mannwhitney":
        res = stats.mannwhitneyu(a, b, alternative="two-sided")
        u = float(res.statistic)
        return u, float(res.pvalue), 2.0 * u / (a.size * b.size) - 1.0
    res = stats.ttest_ind(a, b, equal_var=False)
    dof = a.size + b.size - 2
    pooled = np.sqrt(((a.size - 1) * a.var(ddof=1) + (b.size - 1) * b.var(ddof=1)) / dof)
    correction = 1.0 - 3.0 / (4.0 * dof - 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        g = (a.mean() - b.mean()) / pooled * correction
    return float(res.statistic), float(res.pvalue), float(g)


def within_day_tests(
    table: pd.DataFrame, measure: str = "percent_time", test: str = "mannwhitney"
) -> pd.DataFrame:
    """Conditions compared on each day, per behaviour (see the module docstring).

    Returns
    -------
    DataFrame, one row per behaviour x day x pair of conditions: ``behaviour, day,
    condition_a, condition_b, n_a, n_b, mean_a, mean_b, test, statistic, p, p_bh,
    effect_size, effect`` (the effect's name), ``measure``. A pair where a condition has fewer
    than two mice that day, or where every mouse of both has the same value, gets NaN
    statistics (not tested, so not counted in the correction).

    Raises
    ------
    ValueError
        For an unknown ``test``, or data that cannot be compared (:func:`untestable_reason`).
    """
    if test not in TESTS:
        raise ValueError(f"test must be one of {list(TESTS)}, got {test!r}")
    values = mouse_day_values(table, measure)
    reason = untestable_reason(values)
    if reason:
        raise ValueError(reason)
    rows = []
    conditions = sorted(values["condition"].unique(), key=str)
    for (behaviour, day), group in values.groupby(["behaviour", "day"], sort=True):
        by_condition = {
            c: g["value"].dropna().to_numpy(float) for c, g in group.groupby("condition")
        }
        for cond_a, cond_b in itertools.combinations(conditions, 2):
            a = by_condition.get(cond_a, np.zeros(0))
            b = by_condition.get(cond_b, np.zeros(0))
            statistic = p = effect = np.nan
            if a.size >= 2 and b.size >= 2 and np.ptp(np.concatenate([a, b])) > 0:
                statistic, p, effect = _compare(a, b, test)
            rows.append(
                {
                    "behaviour": behaviour,
                    "day": int(day),
                    "condition_a": cond_a,
                    "condition_b": cond_b,
                    "n_a": int(a.size),
                    "n_b": int(b.size),
                    "mean_a": float(a.mean()) if a.size else np.nan,
                    "mean_b": float(b.mean()) if b.size else np.nan,
                    "test": TEST_NAMES[test],
                    "statistic": statistic,
                    "p": p,
                    "effect_size": effect,
                    "effect": EFFECT_NAMES[test],
                    "measure": measure,
                }
            )
    out = pd.DataFrame(rows)
    out.insert(out.columns.get_loc("p") + 1, "p_bh", bh_correct(out["p"]))
    return out


def _fit(formula: str, data: pd.DataFrame):
    """A MixedLM fit by maximum likelihood with a random intercept per mouse, and what its
    warnings said (the optimisers' retries left out once one converged)."""
    import statsmodels.formula.api as smf

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = smf.mixedlm(formula, data, groups=data["mouse"])
        result = model.fit(reml=False, method=FIT_METHODS)
    notes = {str(w.message).split("\n")[0].strip() for w in caught}
    if result.converged:
        notes = {n for n in notes if "failed to converge" not in n and "Retrying" not in n}
    return result, notes


def _fit_note(notes: set[str]) -> str:
    """The fits' warnings in a few words each."""
    short = {
        "boundary": "random-intercept variance at 0 (the mice differ no more than the noise)",
        "Hessian": "Hessian not positive definite at the estimate",
    }
    said = [next((v for k, v in short.items() if k in n), n) for n in sorted(notes)]
    return "; ".join(dict.fromkeys(said))


def mixed_model_tests(
    table: pd.DataFrame, measure: str = "percent_time", reference: str | None = None
) -> pd.DataFrame:
    """The condition x day interaction per behaviour, and the condition's main effect (see the
    module docstring).

    Parameters
    ----------
    reference
        The condition the others' slopes are compared with (default ``"control"`` when there
        is one, else the first in sorted order).

    Returns
    -------
    DataFrame, one row per behaviour: ``behaviour, measure, reference, mice, observations,
    lr_statistic, df, p`` (likelihood-ratio test of the interaction), ``p_bh``,
    ``slope_reference`` (per day), and for every other condition ``C``:
    ``slope_difference_C`` (its slope minus the reference's, per day), ``ci_low_C``,
    ``ci_high_C`` (95 % Wald interval), ``change_over_days_C`` (the difference times the span
    of days); ``condition_lr``, ``condition_p``, ``condition_p_bh`` (the condition's main
    effect: ``condition + day`` against ``day``); ``converged`` and ``note`` (warnings of the
    fits, or why a behaviour was not modelled: no variation, a condition without values, a
    failed fit). A behaviour some condition never has a value for (e.g. a latency when no
    mouse of it showed the behaviour) is modelled on the conditions that have values, the
    degrees of freedom counting only them; without the reference it is not modelled.

    Raises
    ------
    ValueError
        When the data cannot be compared (:func:`untestable_reason`), covers one day only, or
        ``reference`` is not one of its conditions.
    """
    values = mouse_day_values(table, measure)
    reason = untestable_reason(values)
    if reason:
        raise ValueError(reason)
    if values["day"].nunique() < 2:
        raise ValueError(f"one day only ({values['day'].iloc[0]}): no trend over days to test")
    conditions = sorted(values["condition"].unique(), key=str)
    if reference is None:
        reference = "control" if "control" in conditions else conditions[0]
    check_reference(reference, conditions)
    others = [c for c in conditions if c != reference]
    span = float(values["day"].max() - values["day"].min())
    rows = [
        _model_behaviour(behaviour, data.dropna(subset=["value"]), measure, reference, others, span)
        for behaviour, data in values.groupby("behaviour", sort=True)
    ]
    out = pd.DataFrame(rows)
    for column in (f"slope_difference_{c}" for c in others):
        if column not in out:
            out[column] = np.nan
    out.insert(out.columns.get_loc("p") + 1, "p_bh", bh_correct(out["p"]))
    out.insert(
        out.columns.get_loc("condition_p") + 1, "condition_p_bh", bh_correct(out["condition_p"])
    )
    order = [c for c in out.columns if c not in ("converged", "note")] + ["converged", "note"]
    return out[order]


def check_reference(reference: str, conditions: list) -> None:
    """Refuse a reference condition the data does not have."""
    if reference not in conditions:
        raise ValueError(f"reference condition {reference!r} is not one of {conditions}")


def _model_behaviour(
    behaviour: str, data: pd.DataFrame, measure: str, reference: str, others: list, span: float
) -> dict:
    """One row of :func:`mixed_model_tests`: three ML fits of one behaviour's values."""
    data = data.reset_index(drop=True)
    # a condition is modelled with at least 2 mice and 2 days that have a value
    spread = data.groupby("condition").agg(mice=("mouse", "nunique"), days=("day", "nunique"))
    enough = spread[(spread["mice"] >= 2) & (spread["days"] >= 2)].index
    present = set(enough)
    fitted = [c for c in others if c in present]
    data = data[data["condition"].isin([reference, *fitted])].reset_index(drop=True)
    row: dict = {
        "behaviour": behaviour,
        "measure": measure,
        "reference": reference,
        "mice": int(data["mouse"].nunique()),
        "observations": int(len(data)),
        "lr_statistic": np.nan,
        "df": len(fitted),
        "p": np.nan,
        "slope_reference": np.nan,
    }
    for c in others:
        row.update({f"slope_difference_{c}": np.nan, f"ci_low_{c}": np.nan,
                    f"ci_high_{c}": np.nan, f"change_over_days_{c}": np.nan})  # fmt: skip
    row.update({"condition_lr": np.nan, "condition_p": np.nan, "converged": False, "note": ""})
    if reference not in present:
        row["note"] = (
            f"the reference condition {reference!r} has values for fewer than 2 mice or 2 days: "
            "not modelled"
        )
        return row
    if not fitted:
        row["note"] = "no other condition has values for 2 mice and 2 days: not modelled"
        return row
    if len(data) <= 2 * (1 + len(fitted)) + 2:  # fixed effects, mouse variance, residual
        row["note"] = f"{len(data)} values are too few for the model: not modelled"
        return row
    if data["value"].std(ddof=0) == 0:
        row["note"] = "the same value in every mouse and day: nothing to model"
        return row
    term = f"C(condition, Treatment(reference={reference!r}))"
    try:
        full, notes = _fit(f"value ~ {term} * day", data)
        additive, more = _fit(f"value ~ {term} + day", data)
        days_only, most = _fit("value ~ day", data)
    except Exception as exc:  # noqa: BLE001 - a failed fit is a note on its row, not a crash
        row["note"] = f"fit failed: {type(exc).__name__}: {str(exc).splitlines()[0]}"
        return row
    lr = max(0.0, 2.0 * (full.llf - additive.llf))
    condition_lr = max(0.0, 2.0 * (additive.llf - days_only.llf))
    ci = full.conf_int()
    row.update(
        {
            "lr_statistic": lr,
            "p": float(stats.chi2.sf(lr, len(fitted))),
            "slope_reference": float(full.params["day"]),
            "condition_lr": condition_lr,
            "condition_p": float(stats.chi2.sf(condition_lr, len(fitted))),
            "converged": bool(full.converged and additive.converged and days_only.converged),
            "note": _fit_note(notes | more | most),
        }
    )
    if len(fitted) < len(others):
        missing = ", ".join(c for c in others if c not in present)
        said = f"too few values in {missing} (fewer than 2 mice or 2 days): left out"
        row["note"] = "; ".join(n for n in (said, row["note"]) if n)
    for c in fitted:
        name = f"{term}[T.{c}]:day"
        row[f"slope_difference_{c}"] = float(full.params[name])
        row[f"ci_low_{c}"] = float(ci.loc[name, 0])
        row[f"ci_high_{c}"] = float(ci.loc[name, 1])
        row[f"change_over_days_{c}"] = float(full.params[name]) * span
    return row
