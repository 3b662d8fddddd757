"""The /presets resource: own presets, operator-published ones, nobody else's."""

from __future__ import annotations

import pytest

from api.client import ApiError, AvipClient
from api.schemas import PresetItem, PresetLayout

LAYOUT = PresetLayout(items=[PresetItem(job_id=3, avi="cone_search", row=0, col=6, width=6,
                                        height=3)])


def test_presets_are_private_unless_an_operator_publishes_them(live_api) -> None:  # type: ignore[no-untyped-def]
    alice = AvipClient(live_api.url, live_api.make_user("alice"))
    bob = AvipClient(live_api.url, live_api.make_user("bob"))
    op = live_api.operator()
    mine = alice.create_preset("sky", LAYOUT)
    assert mine.mine and mine.owner == "alice" and mine.layout == LAYOUT
    with pytest.raises(ApiError) as conflict:
        alice.create_preset("sky", LAYOUT)
    assert conflict.value.status == 409 and f"/presets/{mine.id}" in str(conflict.value)
    assert bob.presets().count == 0
    with pytest.raises(ApiError) as hidden:
        bob.preset(mine.id)
    assert hidden.value.status == 404
    with pytest.raises(ApiError) as forbidden:
        alice.update_preset(mine.id, published=True)
    assert forbidden.value.status == 403 and "operator" in str(forbidden.value)
    with pytest.raises(ApiError) as not_owner:
        bob.delete_preset(mine.id)
    assert not_owner.value.status == 404

    shared = op.create_preset("tour", LAYOUT, published=True)
    assert [p.name for p in bob.presets().data] == ["tour"]
    assert not bob.preset(shared.id).mine
    with pytest.raises(ApiError):
        bob.update_preset(shared.id, layout=PresetLayout())
    assert sorted(p.name for p in alice.presets().data) == ["sky", "tour"]

    moved = LAYOUT.model_copy(update={"items": [LAYOUT.items[0].model_copy(update={"col": 0})]})
    assert alice.update_preset(mine.id, layout=moved).layout.items[0].col == 0
    alice.delete_preset(mine.id)
    assert [p.name for p in alice.presets().data] == ["tour"]
    for client in (alice, bob, op):
        client.close()


def test_bad_layouts_are_refused_with_the_field(live_api) -> None:  # type: ignore[no-untyped-def]
    with AvipClient(live_api.url, live_api.make_user("alice")) as alice:
        bad = {"name": "x", "layout": {"items": [{"job_id": 1, "col": 12}]}}
        with pytest.raises(ApiError) as error:
            alice._send(PresetLayout, "POST", "/presets", bad)
        assert error.value.status == 422 and "col" in str(error.value)
        with pytest.raises(ApiError) as name_error:
            alice._send(PresetLayout, "POST", "/presets", {"name": "Bad Name!"})
        assert name_error.value.status == 422 and "name" in str(name_error.value)
