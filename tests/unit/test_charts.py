"""The dashboard's SVG charts: well-formed, to scale, accessible, escaped, and within the inbox's CSP."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from markupsafe import Markup

from bot.inbox import charts

SVG = "{http://www.w3.org/2000/svg}"
EVIL = '<script>alert("x")</script> Tom & Jerry\'s'


def parse(markup: Markup) -> ET.Element:
    assert isinstance(markup, Markup)
    return ET.fromstring(str(markup))


def classed(root: ET.Element, name: str, tag: str | None = None) -> list[ET.Element]:
    return [el for el in root.iter() if name in el.get("class", "").split() and (tag is None or el.tag == SVG + tag)]


def bar_widths(root: ET.Element) -> list[float]:
    return [float(el.get("width", "nan")) for el in classed(root, "chart-bar", "rect")]


def texts(root: ET.Element) -> list[str]:
    """What the chart writes on screen (its <text> elements)."""
    return ["".join(el.itertext()) for el in root.iter(SVG + "text")]


def some_charts() -> list[Markup]:
    return [
        charts.funnel([("Reached", 1000), ("Talked", None)], title="Funnel"),
        charts.bars([("JES", 12), ("Small", None)], title="Bars"),
        charts.bars([("JES", 40)], title="Share", percent=True),
        charts.weekly_bars(["W1", "W2"], {"new": [3, None], "back": [None, 8]}, title="Weekly"),
        charts.funnel([], title="Nothing"),
        charts.weekly_bars([], {}, title="Nothing"),
    ]


def test_the_funnel_has_one_bar_per_step_as_wide_as_its_share_of_the_first() -> None:
    root = parse(charts.funnel([("Reached", 1000), ("Talked", 600), ("Half", 500), ("Met", 250)], title="Path"))
    widths = bar_widths(root)
    assert len(widths) == 4
    assert widths[0] == max(widths) > 0
    assert widths[2] == pytest.approx(widths[0] / 2, abs=1)
    assert widths[3] == pytest.approx(widths[2] / 2, abs=1)
    assert widths[1] == pytest.approx(widths[0] * 0.6, abs=1)
    assert [t for t in texts(root) if t in {"1000", "600", "500", "250"}] == ["1000", "600", "500", "250"]


def test_the_funnel_writes_the_drop_between_steps() -> None:
    root = parse(charts.funnel([("Reached", 1000), ("Talked", 600), ("Half", 500), ("Met", 250)], title="Path"))
    drops = ["".join(el.itertext()) for el in classed(root, "chart-drop")]
    assert drops == ["−40%", "−17%", "−50%"]  # 600 → 500 is 16.7 %
    french = parse(charts.funnel([("a", 1000), ("b", 600)], title="Parcours", drop_label="{pct} % de perte"))
    assert ["".join(el.itertext()) for el in classed(french, "chart-drop")] == ["40 % de perte"]
    desc = root.find(SVG + "desc")
    assert desc is not None and "Talked: 600 (−40%)" in (desc.text or "")


def test_no_drop_is_written_from_a_hidden_count_or_after_zero() -> None:
    root = parse(charts.funnel([("a", 0), ("b", 0), ("c", None), ("d", None), ("e", 8)], title="Path"))
    assert classed(root, "chart-drop") == []
    assert len(bar_widths(root)) == 5


def test_a_hidden_count_is_a_hatched_stub_with_the_hidden_label_and_no_number() -> None:
    root = parse(charts.bars([("JES", 12), ("Small partner", None)], title="By partner", hidden="fewer than 5"))
    bars = classed(root, "chart-bar", "rect")
    assert len(bars) == 2
    assert "chart-hidden" not in bars[0].get("class", "").split()
    assert "chart-hidden" in bars[1].get("class", "").split()
    assert bars[1].get("fill", "").startswith("url(#")
    small = [row for row in classed(root, "chart-row") if "Small partner" in texts(row)]
    assert len(small) == 1 and texts(small[0]) == ["Small partner", "fewer than 5"]
    assert float(bars[1].get("width", "0")) < float(bars[0].get("width", "0"))


def test_shares_are_drawn_against_one_hundred() -> None:
    root = parse(charts.bars([("half", 50), ("all", 100), ("none", 0)], title="Share", percent=True))
    half, whole, nothing = bar_widths(root)
    assert half == pytest.approx(whole / 2, abs=1) and nothing == 0
    alone = parse(charts.bars([("half", 50)], title="Share", percent=True))
    assert bar_widths(alone)[0] == pytest.approx(half)  # not stretched to the width
    assert [t for t in texts(root) if t.endswith("%")] == ["50%", "100%", "0%"]


def test_counts_are_scaled_to_the_largest() -> None:
    widths = bar_widths(parse(charts.bars([("a", 10), ("b", 40), ("c", 20)], title="Sources")))
    assert widths[1] == max(widths)
    assert widths[2] == pytest.approx(widths[1] / 2, abs=1)
    assert widths[0] == pytest.approx(widths[1] / 4, abs=1)


def test_labels_from_data_are_escaped() -> None:
    made = [
        charts.funnel([(EVIL, 10), ("b", 5)], title=EVIL),
        charts.bars([(EVIL, 10)], title="Sources", hidden=EVIL),
        charts.bars([("a", None)], title="Sources", hidden=EVIL),
        charts.weekly_bars([EVIL, "W2"], {EVIL: [1, None]}, title=EVIL),
        charts.funnel([], title=EVIL, empty=EVIL),
    ]
    for markup in made:
        assert "<script" not in str(markup)
        root = parse(markup)
        assert not [el for el in root.iter() if el.tag.endswith("script")]
        assert EVIL in texts(root) or EVIL in [el.text for el in root.iter(SVG + "title")]
    funnel = parse(made[0])
    assert EVIL in texts(funnel)
    title = funnel.find(SVG + "title")
    assert title is not None and title.text == EVIL


def test_control_characters_in_labels_keep_the_svg_well_formed() -> None:
    root = parse(charts.bars([("a\x00b\x1b", 3)], title="t\x07"))
    assert "ab" in texts(root)


@pytest.mark.parametrize("index", range(6))
def test_no_inline_style_and_the_frame_is_accessible(index: int) -> None:
    root = parse(some_charts()[index])
    assert not [el for el in root.iter() if el.tag.endswith("style") or "style" in el.attrib]
    assert root.tag == SVG + "svg"
    assert root.get("role") == "img" and root.get("class") == "chart" and root.get("width") == "100%"
    assert len((root.get("viewBox") or "").split()) == 4
    ids = {el.get("id"): el for el in root.iter() if el.get("id")}
    labelled = (root.get("aria-labelledby") or "").split()
    assert [ids[i].tag for i in labelled] == [SVG + "title", SVG + "desc"]
    assert all((ids[i].text or "").strip() for i in labelled)
    for el in root.iter():  # every url(#...) points inside this chart
        for value in el.attrib.values():
            if value.startswith("url(#"):
                assert value[5:-1] in ids


def test_ids_are_deterministic_and_differ_between_charts() -> None:
    first = charts.bars([("a", 3)], title="Young people per source")
    assert first == charts.bars([("a", 3)], title="Young people per source")
    other = charts.bars([("a", 4)], title="Young people per source")
    id_of = parse(first).find(SVG + "title")
    other_id = parse(other).find(SVG + "title")
    assert id_of is not None and other_id is not None
    assert (id_of.get("id") or "").startswith("chart-young-people-per-source-")
    assert id_of.get("id") != other_id.get("id")


def test_empty_data_says_the_empty_text() -> None:
    for markup in (
        charts.funnel([], title="Path", empty="Nothing yet"),
        charts.bars([], title="Sources", empty="Nothing yet"),
        charts.weekly_bars([], {"new": []}, title="Weeks", empty="Nothing yet"),
        charts.weekly_bars(["W1"], {}, title="Weeks", empty="Nothing yet"),
    ):
        root = parse(markup)
        assert "Nothing yet" in texts(root)
        assert classed(root, "chart-bar") == []
    assert "No data" in texts(parse(charts.bars([], title="Sources")))


def test_weekly_bars_have_a_group_per_week_a_legend_per_series_and_round_ticks() -> None:
    weeks = [f"2025-W{n:02d}" for n in range(1, 27)]
    series: dict[str, list[int | None]] = {
        "web": [n % 5 for n in range(26)],
        "Telegram": [2] * 26,
        "WhatsApp": [None] * 25 + [1],
    }
    root = parse(charts.weekly_bars(weeks, series, title="New young people per week"))
    groups = classed(root, "chart-week", "g")
    assert len(groups) == 26
    legend = classed(root, "chart-legend-item", "g")
    assert [texts(item) for item in legend] == [["web"], ["Telegram"], ["WhatsApp"]]
    assert len({item.find(SVG + "rect").get("fill") for item in legend}) == 3  # type: ignore[union-attr]
    assert len(classed(root, "chart-legend-hidden")) == 1  # the hatched mark is explained once
    assert len(classed(root, "chart-hidden", "rect")) == 25
    labels = [t for group in groups for t in texts(group)]
    assert 2 <= len(labels) < 26 and labels[0] == "2025-W01"  # thinned so they do not overlap
    axis = classed(root, "chart-axis", "g")
    ticks = [int(t) for t in texts(axis[0])]
    assert 3 <= len(ticks) <= 5 and ticks[0] == 0 and ticks[-1] >= 6  # the largest stack is 4 + 2
    assert ticks == [0, 2, 4, 6]


def test_weekly_stacks_are_to_scale_and_hidden_cells_count_as_zero() -> None:
    root = parse(charts.weekly_bars(["W1", "W2"], {"a": [10, None], "b": [20, 10]}, title="Weeks"))
    first, second = classed(root, "chart-week", "g")
    heights = [float(el.get("height", "nan")) for el in classed(first, "chart-bar", "rect")]
    assert heights[1] == pytest.approx(2 * heights[0], abs=1)
    (alone,) = classed(second, "chart-bar", "rect")
    assert float(alone.get("height", "nan")) == pytest.approx(heights[0], abs=1)
    assert len(classed(second, "chart-hidden", "rect")) == 1
    desc = root.find(SVG + "desc")
    assert desc is not None and "W2: a < 5, b 10" in (desc.text or "")


def test_the_palette_is_reused_in_order() -> None:
    assert len(charts.PALETTE) == len(set(charts.PALETTE)) == 8
    names = [f"s{n}" for n in range(9)]
    root = parse(charts.weekly_bars(["W1"], {name: [1] for name in names}, title="Many"))
    fills = [el.get("fill") for el in classed(root, "chart-bar", "rect")]
    assert fills == [*charts.PALETTE, charts.PALETTE[0]]


def test_series_of_the_wrong_length_are_refused() -> None:
    with pytest.raises(ValueError, match="3 weeks"):
        charts.weekly_bars(["W1", "W2", "W3"], {"a": [1, 2]}, title="Weeks")
