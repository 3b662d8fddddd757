"""Dashboards: several AVI result views in a resizable grid, saved as named presets.

Presets live in the API (``/presets``): each user keeps their own; an operator
may publish one, which everyone then sees. The grid's geometry comes back from
the browser as the user drags and resizes (``GridStack.state``), so what is
saved is what the user arranged.
"""

from __future__ import annotations

from typing import Any

import panel as pn
import param

from api.client import ApiError
from api.schemas import PresetItem, PresetLayout, PresetPublic
from panel_apps.results import ResultView
from panel_apps.session import PlatformSession, SignedOut

ROW_HEIGHT_PX = 120
NEW_ITEM_WIDTH, NEW_ITEM_HEIGHT = 6, 4


class DashboardBoard(pn.viewable.Viewer):
    """A grid of result views plus the preset controls."""

    items = param.List(default=[], item_type=PresetItem, doc="Views on the board and where.")
    preset_name = param.String(default="", doc="Name to save the board under.")
    publish = param.Boolean(default=False, doc="Publish to everyone (operators only).")
    presets = param.List(default=[], item_type=PresetPublic, doc="Presets the user can load.")
    message = param.String(default="", doc="Outcome of the last action.")

    def __init__(self, session: PlatformSession, **params: Any) -> None:
        super().__init__(**params)
        self.session = session
        self.grid = pn.layout.GridStack(ncols=12, allow_resize=True, allow_drag=True,
                                        sizing_mode="stretch_width", min_height=400,
                                        css_classes=["avip-grid"])
        self.job_choice = pn.widgets.Select(label="Finished job", options={})
        self.preset_choice = pn.widgets.Select(label="Preset", options={},
                                               css_classes=["avip-preset-choice"])
        self.status = pn.pane.Markdown("", css_classes=["avip-dashboard-status"])
        self._ids: dict[str, int] = {}  # GridStack element id -> index in items

    def refresh(self) -> None:
        try:
            jobs = self.session.call(lambda c: c.jobs(state="succeeded", limit=100)).data
            self.presets = self.session.call(lambda c: c.presets()).data
        except SignedOut:
            return
        self.job_choice.options = {f"{j.id} · {j.avi}": (j.id, j.avi) for j in jobs}
        self.preset_choice.options = {self._label(p): p.id for p in self.presets}

    @staticmethod
    def _label(preset: PresetPublic) -> str:
        flag = " (published)" if preset.published else ""
        return f"{preset.name} — {preset.owner}{flag}"

    def add_view(self, job_id: int, avi: str) -> None:
        bottom = max((i.row + i.height for i in self.items), default=0)
        self.items = [*self.items, PresetItem(job_id=job_id, avi=avi, title=f"{avi} #{job_id}",
                                              row=bottom, col=0, width=NEW_ITEM_WIDTH,
                                              height=NEW_ITEM_HEIGHT)]

    def clear(self) -> None:
        self.items = []

    @param.depends("items", watch=True)
    def _render(self) -> None:
        self.grid.objects = {}
        self._ids = {}
        self.grid.nrows = max((i.row + i.height for i in self.items), default=4)
        for index, item in enumerate(self.items):
            view = ResultView(self.session, job_id=None, avi=item.avi, with_downloads=False)
            view.job_id = item.job_id
            card = pn.Column(f"**{item.title or item.avi}**", view,
                             css_classes=["avip-grid-item"], scroll=True)
            self.grid[item.row:item.row + item.height, item.col:item.col + item.width] = card
            self._ids[str(id(card))] = index
        self.grid.height = self.grid.nrows * ROW_HEIGHT_PX

    def arranged_items(self) -> list[PresetItem]:
        """The items with the geometry the browser reports (as dragged and resized)."""
        placed = {self._ids.get(str(s.get("id"))): s for s in self.grid.state or []}
        out = []
        for index, item in enumerate(self.items):
            s = placed.get(index)
            if s is None:
                out.append(item)
                continue
            out.append(item.model_copy(update={
                "row": int(s["y0"]), "col": int(s["x0"]),
                "height": max(1, int(s["y1"]) - int(s["y0"])),
                "width": max(1, int(s["x1"]) - int(s["x0"]))}))
        return out

    def save(self) -> PresetPublic | None:
        """Save the board under ``preset_name`` (replacing a preset of yours of that name)."""
        layout = PresetLayout(items=self.arranged_items())
        name = self.preset_name.strip()
        mine = {p.name: p for p in self.presets if p.mine}
        try:
            if name in mine:
                saved = self.session.call(lambda c: c.update_preset(
                    mine[name].id, layout, published=self.publish))
            else:
                saved = self.session.call(lambda c: c.create_preset(name, layout, self.publish))
        except SignedOut:
            return None
        except ApiError as error:
            self.message = f"Not saved: {error}"
            return None
        self.message = f"Saved preset **{saved.name}** ({len(layout.items)} views)."
        self.refresh()
        return saved

    def load(self, preset_id: int) -> None:
        try:
            preset = self.session.call(lambda c: c.preset(preset_id))
        except SignedOut:
            return
        except ApiError as error:
            self.message = f"Cannot load: {error}"
            return
        self.preset_name = preset.name if preset.mine else ""
        self.items = list(preset.layout.items)
        self.message = f"Loaded preset **{preset.name}** by {preset.owner}."

    @param.depends("message", watch=True)
    def _show_message(self) -> None:
        self.status.object = self.message

    def __panel__(self) -> pn.viewable.Viewable:
        add = pn.widgets.Button(label="Add view")
        add.on_click(lambda _e: self.job_choice.value and self.add_view(*self.job_choice.value))
        clear = pn.widgets.Button(label="Clear board")
        clear.on_click(lambda _e: self.clear())
        save = pn.widgets.Button(label="Save preset", button_type="primary")
        save.on_click(lambda _e: self.save())
        load = pn.widgets.Button(label="Load preset")
        load.on_click(lambda _e: self.preset_choice.value and self.load(self.preset_choice.value))
        controls: list[Any] = [pn.widgets.TextInput.from_param(
            self.param.preset_name, label="Preset name", css_classes=["avip-dashboard-name"])]
        if self.session.is_operator:
            controls.append(pn.widgets.Checkbox.from_param(self.param.publish,
                                                           label="Publish to everyone"))
        return pn.Column(
            "## Dashboard", pn.Row(self.job_choice, add, clear),
            pn.Row(*controls, save), pn.Row(self.preset_choice, load), self.status, self.grid,
            sizing_mode="stretch_width",
        )
