"""The user-space browser: list, upload, download, delete, share, and "shared with me"."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
import panel as pn
import param

from api.client import ApiError
from panel_apps.session import PlatformSession, SignedOut

COLUMNS = ["path", "is_dir", "size", "modified"]


def entries_frame(entries: list[Any]) -> pd.DataFrame:
    rows = [{"path": e.path, "is_dir": e.is_dir, "size": e.size,
             "modified": pd.Timestamp(e.modified, unit="s").strftime("%Y-%m-%d %H:%M")}
            for e in entries]
    return pd.DataFrame(rows, columns=COLUMNS)


class SpaceBrowser(pn.viewable.Viewer):
    """One folder of the user's space at a time, plus what others shared with them."""

    folder = param.String(default="", doc="Folder being listed ('' = the root).")
    selected = param.String(default="", doc="Path of the selected entry.")
    share_with = param.String(default="", doc="User (or group:NAME) to share the selection with.")
    message = param.String(default="", doc="Outcome of the last action.")

    def __init__(self, session: PlatformSession, **params: Any) -> None:
        super().__init__(**params)
        self.session = session
        self.table = pn.widgets.Tabulator(entries_frame([]), disabled=True, pagination="remote",
                                          page_size=20, selectable=1, show_index=False,
                                          sizing_mode="stretch_width")
        self.table.param.watch(self._on_select, "selection")
        self.usage = pn.pane.Markdown("")
        self.upload = pn.widgets.FileInput(label="Upload", multiple=False,
                                           css_classes=["avip-upload"])
        self.upload_button = pn.widgets.Button(label="Upload into this folder")
        self.upload_button.on_click(lambda _e: self.upload_file())
        self.delete_button = pn.widgets.Button(label="Delete selected", button_type="danger")
        self.delete_button.on_click(lambda _e: self.delete_selected())
        self.share_button = pn.widgets.Button(label="Share selected")
        self.share_button.on_click(lambda _e: self.share_selected())
        self.download = pn.widgets.FileDownload(callback=self._fetch_selected, filename="file",
                                                label="Download selected")
        self.shared = pn.widgets.Tabulator(pd.DataFrame(), disabled=True, show_index=False,
                                           sizing_mode="stretch_width")
        self.status = pn.pane.Markdown("", css_classes=["avip-space-status"])

    def refresh(self) -> None:
        try:
            listing = self.session.call(lambda c: c.space_ls(self.folder))
            received = self.session.call(lambda c: c.shared_with_me())
        except SignedOut:
            return
        except ApiError as error:
            self.message = str(error)
            return
        keep = self.selected
        frame = entries_frame(listing.data)
        self.table.value = frame
        if keep in frame["path"].tolist():  # a refresh keeps the user's selection
            self.table.selection = [frame["path"].tolist().index(keep)]
        self.usage.object = (f"Folder `/{self.folder}` · using {listing.used_bytes:,} of "
                             f"{listing.quota_bytes:,} bytes")
        self.shared.value = pd.DataFrame([
            {"id": s.id, "from": s.owner, "kind": s.kind, "target": s.target,
             "since": s.created_at.strftime("%Y-%m-%d")} for s in received.data])

    def _on_select(self, event: Any) -> None:
        rows = event.new
        frame = self.table.value
        self.selected = str(frame.iloc[rows[0]]["path"]) if rows and len(frame) else ""
        if self.selected:
            self.download.filename = Path(self.selected).name

    @param.depends("folder", watch=True)
    def _folder_changed(self) -> None:
        self.refresh()

    @param.depends("message", watch=True)
    def _show_message(self) -> None:
        self.status.object = self.message

    def upload_file(self) -> None:
        if self.upload.value is None or not self.upload.filename:
            self.message = "Choose a file to upload first."
            return
        target = f"{self.folder}/{self.upload.filename}".lstrip("/")
        with tempfile.TemporaryDirectory() as tmp:
            local = Path(tmp) / "upload"
            local.write_bytes(self.upload.value)
            self._act(lambda c: c.space_put(local, target), f"Uploaded {target}.")

    def delete_selected(self) -> None:
        if self.selected:
            path = self.selected
            self._act(lambda c: c.space_rm(path), f"Deleted {path}.")

    def share_selected(self) -> None:
        if not (self.selected and self.share_with.strip()):
            self.message = "Select a file and name a user (or group:NAME) to share it with."
            return
        who = self.share_with.strip()
        kwargs = {"group": who[6:]} if who.startswith("group:") else {"user": who}
        path = self.selected
        self._act(lambda c: c.share(path=path, **kwargs), f"Shared {path} with {who}.")

    def _act(self, action: Any, done: str) -> None:
        try:
            self.session.call(action)
        except SignedOut:
            return
        except ApiError as error:
            self.message = f"Refused: {error}"
            return
        self.message = done
        self.refresh()

    def _fetch_selected(self) -> str | None:
        if not self.selected:
            return None
        dest = Path(tempfile.mkdtemp(prefix="avip-space-")) / Path(self.selected).name
        path = self.selected
        return str(self.session.call(lambda c: c.space_get(path, dest)))

    def __panel__(self) -> pn.viewable.Viewable:
        return pn.Column(
            "## My space", pn.widgets.TextInput.from_param(self.param.folder, label="Folder"),
            self.usage, self.table,
            pn.Row(self.download, self.delete_button),
            pn.Row(pn.widgets.TextInput.from_param(self.param.share_with, label="Share with"),
                   self.share_button),
            pn.Row(self.upload, self.upload_button), self.status,
            "## Shared with me", self.shared,
        )
