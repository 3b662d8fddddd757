"""Send a table from the browser to TOPCAT or Aladin: the SAMP Web Profile.

The hub runs on the user's machine, next to the browser, never next to the Panel server;
only the page can reach it (``http://127.0.0.1:21012/``, XML-RPC over HTTP POST, with
CORS). The server side asks the API for a signed link (:mod:`api.routes.links`); the page
registers with the hub as ``avip`` (the hub asks the user to allow it once), broadcasts
``table.load.votable`` with that URL and unregisters; the applications fetch the table
from the API themselves. What happened comes back to Python as a message for the page.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from panel.custom import JSComponent

NO_HUB = ("No SAMP hub answered on this computer: start TOPCAT or Aladin with its Web "
          "Profile enabled (TOPCAT: File ▸ Preferences ▸ SAMP), then send again.")
NO_RECEIVER = ("The SAMP hub is running but no application that loads tables is connected: "
               "start TOPCAT or Aladin, then send again.")

# No maintained npm or PyPI package gives Panel a SAMP Web Profile client, hence this small
# self-contained one: XML-RPC bodies built by hand, fetch(), responses read with DOMParser.
ESM = r"""
const HUB = "http://127.0.0.1:21012/";
const MTYPE = "table.load.votable";

const esc = (s) => String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

function encode(v) {
  if (Array.isArray(v)) {
    return "<array><data>" + v.map((x) => "<value>" + encode(x) + "</value>").join("") +
      "</data></array>";
  }
  if (v !== null && typeof v === "object") {
    return "<struct>" + Object.entries(v).map(([k, x]) =>
      "<member><name>" + esc(k) + "</name><value>" + encode(x) + "</value></member>").join("") +
      "</struct>";
  }
  return "<string>" + esc(v) + "</string>";  // SAMP sends every scalar as a string
}

const kids = (el, tag) => Array.from(el.children).filter((c) => c.tagName === tag);

function decode(value) {  // a <value> element
  const typed = value.children[0];
  if (!typed) return value.textContent;  // an untyped value is a string
  switch (typed.tagName) {
    case "struct":
      return Object.fromEntries(kids(typed, "member").map((m) =>
        [kids(m, "name")[0].textContent, decode(kids(m, "value")[0])]));
    case "array":
      return kids(kids(typed, "data")[0], "value").map(decode);
    case "int": case "i4": case "double":
      return Number(typed.textContent);
    case "boolean":
      return typed.textContent.trim() === "1";
    default:
      return typed.textContent;
  }
}

async function call(method, ...params) {
  const body = '<?xml version="1.0"?><methodCall><methodName>' + method +
    "</methodName><params>" + params.map((p) => "<param><value>" + encode(p) +
    "</value></param>").join("") + "</params></methodCall>";
  const answer = await fetch(HUB, {method: "POST", headers: {"Content-Type": "text/xml"}, body});
  if (!answer.ok) throw new Error("the hub answered HTTP " + answer.status);
  const xml = new DOMParser().parseFromString(await answer.text(), "text/xml");
  const fault = xml.querySelector("fault > value");
  if (fault) throw new Error(decode(fault).faultString || "the hub refused");
  return decode(xml.querySelector("params > param > value"));
}

async function send(message) {
  let key;
  try {
    key = (await call("samp.webhub.register", {"samp.name": "avip"}))["samp.private-key"];
  } catch (error) {
    const refused = !(error instanceof TypeError);  // TypeError: nothing listening (or CORS)
    return {ok: false, hub: refused, error: String(error.message || error)};
  }
  try {
    await call("samp.webhub.declareMetadata", key,
               {"samp.name": "avip", "samp.description.text": "avip result pages"});
    const sent = await call("samp.webhub.notifyAll", key,
                            {"samp.mtype": MTYPE, "samp.params": message});
    return {ok: true, hub: true, recipients: sent.length};
  } catch (error) {
    return {ok: false, hub: true, error: String(error.message || error)};
  } finally {
    call("samp.webhub.unregister", key).catch(() => {});
  }
}

export function render({ model }) {
  model.on("msg:custom", async (message) => model.send_msg(await send(message)));
  return document.createElement("span");
}
"""


class SampSender(JSComponent):
    """Invisible: :meth:`send` has the page broadcast a table URL over SAMP, and the
    outcome (``{"ok", "hub", "recipients" | "error"}``) comes back to ``on_result``."""

    _esm = ESM

    def __init__(self, on_result: Callable[[dict[str, Any]], None], **params: Any) -> None:
        super().__init__(height=0, width=0, margin=0, **params)
        self._on_result = on_result

    def send(self, url: str, name: str) -> None:
        self._send_msg({"url": url, "name": name})

    def _handle_msg(self, data: Any) -> None:
        self._on_result(data if isinstance(data, dict) else {"ok": False, "error": str(data)})


def outcome_text(result: dict[str, Any], name: str) -> tuple[str, str]:
    """(message, alert type) for what the page reported."""
    if result.get("ok") and result.get("recipients"):
        count = int(result["recipients"])
        return (f"Sent **{name}** to {count} application{'s' if count > 1 else ''} "
                "through the SAMP hub.", "success")
    if result.get("ok"):
        return NO_RECEIVER, "warning"
    if not result.get("hub"):
        return NO_HUB, "danger"
    return f"The SAMP hub refused: {result.get('error')}", "danger"
