// A component's own read (a VM's facts, a console, logs): asked again when `path` or `again`
// changes; the reply to an older path is dropped (`latest` under the component's `slot`).
import { useEffect, useState } from "../lib.js";
import { latest } from "../api.js";

export function useRead(slot, path, again = 0) {
  const [state, setState] = useState({ path: "", data: null, error: "" });
  useEffect(() => {
    if (!path) return;
    let live = true;
    latest(slot, path).then((data) => {
      if (live && data !== null) setState({ path, data, error: "" });
    }).catch((exc) => { if (live) setState({ path, data: null, error: exc.message }); });
    return () => { live = false; };
  }, [path, again]);
  // What was read for another path is not shown for this one.
  return state.path === path ? state : { path, data: null, error: "" };
}
