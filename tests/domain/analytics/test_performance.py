"""Point performance statistics (tradewatch.domain.analytics.performance) against empyrical-reloaded.

empyrical is a test-only dependency: it is the reference, never imported by tradewatch.
"""

from __future__ import annotations

import inspect
import types
import warnings

import empyrical
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st

from tradewatch.domain.analytics import performance

PUBLIC_FUNCTIONS = {
    "sharpe_ratio",
    "sortino_ratio",
    "annual_return",
    "annual_volatility",
    "max_drawdown",
    "calmar_ratio",
    "value_at_risk",
    "expected_shortfall",
    "omega_ratio",
    "tail_ratio",
    "downside_risk",
}

RISK_FREE = [0.0, 0.0001, -0.0003, 0.002, 0.05]
PERIODS_PER_YEAR = [252, 12, 52, 1, 365, 8760]
PER_PERIOD_REQUIRED_RETURN = [0.0, 0.001, -0.002, 0.01]
ANNUAL_REQUIRED_RETURN = [0.0, 0.05, 0.1, 0.3, -0.5, -1.0, -2.0]
CUTOFF = [0.05, 0.01, 0.1, 0.25, 0.5]


# ------------------------------------------------------------------ inputs

finite_returns = st.floats(min_value=-0.5, max_value=0.5, allow_nan=False, allow_infinity=False)
# NaN about one draw in four: missing observations must be exercised, not a rarity.
return_or_nan = st.one_of(finite_returns, finite_returns, finite_returns, st.just(float("nan")))

return_lists = st.one_of(
    st.lists(return_or_nan, min_size=0, max_size=40),
    st.lists(finite_returns, min_size=0, max_size=4),
    # Constant series (zero dispersion), with and without a NaN among them. Long enough (past
    # numpy's 8-way pairwise blocks) that the mean's rounding residue depends on summation order.
    st.builds(lambda value, count: [value] * count, st.one_of(finite_returns, st.just(0.0)), st.integers(0, 40)),
    st.builds(lambda value, count: [value] * count + [float("nan")], finite_returns, st.integers(1, 20)),
    st.builds(lambda count: [float("nan")] * count, st.integers(1, 4)),
)


@st.composite
def returns_inputs(draw):
    values = np.array(draw(return_lists), dtype=np.float64)
    if draw(st.booleans()):
        return values
    return pd.Series(values, index=pd.date_range("2024-01-02", periods=values.size, freq="B", tz="UTC"))


# name -> (ours, empyrical's, strategy of (our keywords, empyrical's keywords))
def _same(**keywords):
    return keywords, keywords


CASES = {
    "sharpe_ratio": (
        performance.sharpe_ratio,
        empyrical.sharpe_ratio,
        st.builds(
            lambda rf, ppy: ({"risk_free": rf, "periods_per_year": ppy}, {"risk_free": rf, "annualization": ppy}),
            st.sampled_from(RISK_FREE),
            st.sampled_from(PERIODS_PER_YEAR),
        ),
    ),
    "sortino_ratio": (
        performance.sortino_ratio,
        empyrical.sortino_ratio,
        st.builds(
            lambda rr, ppy: ({"required_return": rr, "periods_per_year": ppy}, {"required_return": rr, "annualization": ppy}),
            st.sampled_from(PER_PERIOD_REQUIRED_RETURN),
            st.sampled_from(PERIODS_PER_YEAR),
        ),
    ),
    "downside_risk": (
        performance.downside_risk,
        empyrical.downside_risk,
        st.builds(
            lambda rr, ppy: ({"required_return": rr, "periods_per_year": ppy}, {"required_return": rr, "annualization": ppy}),
            st.sampled_from(PER_PERIOD_REQUIRED_RETURN),
            st.sampled_from(PERIODS_PER_YEAR),
        ),
    ),
    "annual_return": (
        performance.annual_return,
        empyrical.annual_return,
        st.builds(lambda ppy: ({"periods_per_year": ppy}, {"annualization": ppy}), st.sampled_from(PERIODS_PER_YEAR)),
    ),
    "annual_volatility": (
        performance.annual_volatility,
        empyrical.annual_volatility,
        st.builds(lambda ppy: ({"periods_per_year": ppy}, {"annualization": ppy}), st.sampled_from(PERIODS_PER_YEAR)),
    ),
    "max_drawdown": (performance.max_drawdown, empyrical.max_drawdown, st.just(({}, {}))),
    "calmar_ratio": (
        performance.calmar_ratio,
        empyrical.calmar_ratio,
        st.builds(lambda ppy: ({"periods_per_year": ppy}, {"annualization": ppy}), st.sampled_from(PERIODS_PER_YEAR)),
    ),
    "omega_ratio": (
        performance.omega_ratio,
        empyrical.omega_ratio,
        st.builds(
            lambda rf, rr, ppy: (
                {"risk_free": rf, "required_return": rr, "periods_per_year": ppy},
                {"risk_free": rf, "required_return": rr, "annualization": ppy},
            ),
            st.sampled_from(RISK_FREE),
            st.sampled_from(ANNUAL_REQUIRED_RETURN),
            st.sampled_from(PERIODS_PER_YEAR),
        ),
    ),
    "tail_ratio": (performance.tail_ratio, empyrical.tail_ratio, st.just(({}, {}))),
    "value_at_risk": (
        performance.value_at_risk,
        empyrical.value_at_risk,
        st.builds(lambda cutoff: _same(cutoff=cutoff), st.sampled_from(CUTOFF)),
    ),
    "expected_shortfall": (
        performance.expected_shortfall,
        empyrical.conditional_value_at_risk,
        st.builds(lambda cutoff: _same(cutoff=cutoff), st.sampled_from(CUTOFF)),
    ),
}


def assert_matches(actual, expected, rtol=1e-9):
    assert type(actual) is float, f"expected a Python float, got {type(actual).__name__}"
    # atol=0: a tiny number must match relatively too; assert_allclose also requires +-inf to
    # sit in the same place and equal_nan lets NaN match NaN only.
    np.testing.assert_allclose(actual, float(expected), rtol=rtol, atol=0, equal_nan=True)


def empyrical_value(function, returns, keywords):
    with warnings.catch_warnings():
        # empyrical divides by zero unguarded in places (tail ratio, CAGR of a wipe-out).
        warnings.simplefilter("ignore", RuntimeWarning)
        return function(returns.copy(), **keywords)


# ------------------------------------------------------------------ (a) agreement with empyrical


def test_every_public_function_is_checked_against_empyrical():
    assert set(CASES) == PUBLIC_FUNCTIONS


@pytest.mark.parametrize("name", sorted(CASES))
@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_agrees_with_empyrical(name, data):
    ours, theirs, keyword_strategy = CASES[name]
    returns = data.draw(returns_inputs(), label="returns")
    our_keywords, their_keywords = data.draw(keyword_strategy, label="keywords")
    before = returns.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # ours stay quiet on NaN, inf and 0 / 0
        actual = ours(returns, **our_keywords)
    assert_matches(actual, empyrical_value(theirs, returns, their_keywords))
    np.testing.assert_array_equal(np.asarray(returns), np.asarray(before))  # input left alone


# ------------------------------------------------------------------ (b) known answers

MIXED_PERCENT = [np.nan, 1, 10, -4, 2, 3, 2, 1, -10]
KNOWN = {
    "sharpe_ratio": 1.7238613961706866,
    "sortino_ratio": 2.605531251673693,
    "annual_return": 1.9135925373194231,
    "max_drawdown": -0.1,
    "calmar_ratio": 19.135925373194233,
}


@pytest.fixture(params=["series", "array"])
def mixed_returns(request):
    values = np.array(MIXED_PERCENT, dtype=np.float64) / 100
    if request.param == "array":
        return values
    return pd.Series(values, index=pd.date_range("2000-01-30", periods=values.size, freq="D", tz="UTC"))


@pytest.mark.parametrize("name", sorted(KNOWN))
def test_known_answers_on_daily_mixed_returns(name, mixed_returns):
    actual = getattr(performance, name)(mixed_returns)
    assert type(actual) is float
    np.testing.assert_allclose(actual, KNOWN[name], rtol=1e-12, atol=0)


def test_known_answers_with_explicit_daily_defaults(mixed_returns):
    assert performance.sharpe_ratio(mixed_returns, risk_free=0.0, periods_per_year=252) == performance.sharpe_ratio(mixed_returns)
    assert performance.sortino_ratio(mixed_returns, required_return=0.0, periods_per_year=252) == performance.sortino_ratio(mixed_returns)


def test_value_at_risk_lets_a_nan_through_as_empyrical_does(mixed_returns):
    assert np.isnan(performance.value_at_risk(mixed_returns))
    clean = np.asarray(mixed_returns)[1:]
    assert performance.value_at_risk(clean) == np.percentile(clean, 5)
    # The expected shortfall skips the NaN: the lowest of 8 returns with k = floor(7 * 0.05) = 0.
    assert performance.expected_shortfall(mixed_returns) == -0.1


# ------------------------------------------------------------------ (c) NaN for a zero denominator


def test_calmar_is_nan_without_a_drawdown():
    assert np.isnan(performance.calmar_ratio(np.array([0.01, 0.02, 0.0, 0.03])))


def test_omega_is_nan_with_nothing_below_the_threshold():
    assert np.isnan(performance.omega_ratio(np.array([0.01, 0.02, 0.03])))
    assert np.isnan(performance.omega_ratio(np.array([0.01, 0.02]), required_return=-0.5))


def test_omega_is_nan_for_an_annual_required_return_at_or_below_minus_one():
    assert np.isnan(performance.omega_ratio(np.array([0.01, -0.02, 0.03]), required_return=-1.0))
    # With one period a year there is nothing to convert and the threshold is used as given.
    assert performance.omega_ratio(np.array([-1.5, -2.5]), required_return=-2.0, periods_per_year=1) == 0.5 / 0.5


@pytest.mark.parametrize("name", ["sharpe_ratio", "sortino_ratio"])
def test_ratio_of_zero_over_zero_is_nan(name):
    assert np.isnan(getattr(performance, name)(np.zeros(5)))


def test_tail_ratio_of_zero_percentiles_is_nan():
    assert np.isnan(performance.tail_ratio(np.zeros(10)))


def test_zero_dispersion_with_a_nonzero_mean_is_infinite_as_in_empyrical():
    constant = np.full(6, 0.01)
    assert performance.sharpe_ratio(constant) == np.inf
    assert performance.sharpe_ratio(-constant) == -np.inf
    assert performance.sharpe_ratio(constant, risk_free=0.01) != performance.sharpe_ratio(constant, risk_free=0.01)  # NaN
    assert performance.sortino_ratio(np.array([0.01, 0.02, 0.03])) == np.inf
    assert performance.annual_volatility(constant) == 0.0
    assert performance.downside_risk(constant) == 0.0


@pytest.mark.parametrize("name", sorted(PUBLIC_FUNCTIONS))
@pytest.mark.parametrize("container", [np.array, pd.Series])
def test_empty_input_gives_nan_and_never_raises(name, container):
    assert np.isnan(getattr(performance, name)(container([], dtype=np.float64)))


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("sharpe_ratio", np.nan),
        ("sortino_ratio", np.nan),
        ("annual_volatility", np.nan),
        ("omega_ratio", np.nan),
        ("downside_risk", 0.0),  # one observation suffices; a gain adds 0
        ("annual_return", (1.01**252) - 1),
        ("max_drawdown", 0.0),
        ("calmar_ratio", np.nan),
        ("tail_ratio", 1.0),
        ("value_at_risk", 0.01),
        ("expected_shortfall", 0.01),
    ],
)
def test_single_observation(name, expected):
    np.testing.assert_allclose(getattr(performance, name)(np.array([0.01])), expected, rtol=1e-12, equal_nan=True)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("sharpe_ratio", np.nan),
        ("annual_volatility", np.nan),
        ("downside_risk", np.nan),
        ("annual_return", 0.0),  # NaN periods are periods without change
        ("max_drawdown", 0.0),
        ("calmar_ratio", np.nan),
        ("tail_ratio", np.nan),
        ("value_at_risk", np.nan),
        ("expected_shortfall", np.nan),
    ],
)
def test_all_nan(name, expected):
    np.testing.assert_equal(getattr(performance, name)(np.full(4, np.nan)), expected)


# ------------------------------------------------------------------ (d) the public surface


def test_module_exposes_exactly_the_eleven_functions():
    defined_here = {
        name
        for name, value in vars(performance).items()
        if not name.startswith("_") and callable(value) and getattr(value, "__module__", None) == performance.__name__
    }
    assert defined_here == PUBLIC_FUNCTIONS
    assert set(performance.__all__) == PUBLIC_FUNCTIONS
    # Whatever else is public is an imported module (numpy as np), nothing callable of ours.
    others = {
        name
        for name, value in vars(performance).items()
        if not name.startswith("_") and name not in PUBLIC_FUNCTIONS and not isinstance(value, types.ModuleType)
    }
    assert others == set()


@pytest.mark.parametrize("name", sorted(PUBLIC_FUNCTIONS))
def test_options_after_returns_are_keyword_only_except_the_cutoff(name):
    parameters = list(inspect.signature(getattr(performance, name)).parameters.values())
    assert parameters[0].name == "returns"
    for parameter in parameters[1:]:
        if parameter.name == "cutoff":
            continue
        assert parameter.kind is inspect.Parameter.KEYWORD_ONLY, parameter.name
    assert getattr(performance, name).__doc__


def test_multidimensional_input_is_refused_clearly():
    with pytest.raises(ValueError, match="one-dimensional"):
        performance.sharpe_ratio(np.zeros((3, 2)))
