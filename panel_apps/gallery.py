"""The AVI gallery: one card per installed AVI, and the launch form of the chosen one."""

from __future__ import annotations

from typing import Any

import panel as pn
import param

from api.schemas import AviPublic
from panel_apps.forms import LaunchForm
from panel_apps.session import PlatformSession, SignedOut


class AviGallery(pn.viewable.Viewer):
    """Cards (title, summary, tags, version); "Open" shows the AVI's launch form."""

    avis = param.List(default=[], item_type=AviPublic, doc="AVIs the API lists.")
    selected = param.String(default="", doc="Name of the AVI whose form is open.")
    launched_job = param.Integer(default=None, allow_None=True, doc="Last job launched here.")

    def __init__(self, session: PlatformSession, **params: Any) -> None:
        super().__init__(**params)
        self.session = session
        self.form_area = pn.Column(css_classes=["avip-form-area"])
        self.cards = pn.FlexBox(css_classes=["avip-gallery"])
        self.broken = pn.pane.Markdown("")

    def refresh(self) -> None:
        try:
            listing = self.session.call(lambda c: c.avis())
        except SignedOut:
            return
        self.avis = listing.data
        self.broken.object = "".join(
            f"\n* **{b.get('name')}** is broken: {b.get('error', '')[:200]}"
            for b in listing.broken)
        self.cards.objects = [self._card(a) for a in self.avis]

    def _card(self, avi: AviPublic) -> pn.viewable.Viewable:
        tags = " ".join(f"`{t}`" for t in avi.tags)
        button = pn.widgets.Button(label=f"Open {avi.title}", button_type="primary",
                                   css_classes=[f"avip-open-{avi.name}"])
        button.on_click(lambda _e, name=avi.name: self.open(name))
        return pn.Card(
            pn.pane.Markdown(f"{avi.summary}\n\n{tags}\n\nversion **{avi.version}** · "
                             f"{avi.author}"),
            button, title=avi.title, width=300, collapsible=False,
            css_classes=["avip-avi-card"],
        )

    def open(self, name: str) -> LaunchForm | None:
        """Show the generated form of AVI ``name``."""
        try:
            detail = self.session.call(lambda c: c.avi(name))
        except SignedOut:
            return None
        form = LaunchForm(self.session, avi=name, schema=detail.params_schema,
                          simplified=self.session.simplified)
        form.param.watch(lambda e: setattr(self, "launched_job", e.new), "submitted_job")
        self.selected = name
        self.form_area.objects = [
            pn.pane.Markdown(f"## Launch {detail.title} `{detail.version}`\n\n{detail.summary}"),
            form,
        ]
        return form

    def __panel__(self) -> pn.viewable.Viewable:
        return pn.Column("## AVI gallery", self.cards, self.broken, self.form_area)
