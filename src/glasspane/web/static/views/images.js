// The image store: upload (with progress), inspect, check, convert, download, import as a
// template, delete. Lists again when a task finishes (a conversion adds an image).
import { html, useEffect, useRef, useState } from "../lib.js";
import { human, stamp } from "../lib.js";
import { API, api, enc } from "../api.js";
import { can, hostList, trackTask } from "../store.js";
import { finished } from "../events.js";
import { confirmThen, openForm } from "../forms.js";

export function ImagesView() {
  const [images, setImages] = useState([]);
  const [info, setInfo] = useState(null);
  const [error, setError] = useState("");
  const load = () => api("/images").then((list) => { setImages(list); setError(""); })
    .catch((exc) => setError(exc.message));
  useEffect(() => { load(); }, [finished.value]);
  const operator = can("operator");
  const convert = (image) => openForm({
    id: "convert", title: `Convert ${image.name}`, submit: "Convert",
    fields: [{ name: "output", label: "Into", required: true, maxLength: 128,
               hint: "the extension names the format: .qcow2 .vhd .vmdk .raw .xva .ova" }],
    run: async (v) => trackTask(await api(`/images/${enc(image.name)}/convert`,
                                          { method: "POST", body: { output: v.output } })) });
  const importAs = (image) => openForm({
    id: "import-template", title: `Import ${image.name} as a template`, submit: "Import",
    fields: [{ name: "name", label: "Template name", required: true, maxLength: 128,
               value: image.name.replace(/\.[^.]*$/, "") },
             { name: "host", label: "On host", type: "select", required: true, value: "local",
               options: hostList.names.map((name) => [name, name]) }],
    run: async (v) => trackTask(await api("/templates", { method: "POST",
                                                         body: { ...v, image: image.name } })) });
  const remove = (image) => confirmThen(`Delete ${image.name}?`, "It is deleted from the store.",
    "Delete", async () => { await api(`/images/${enc(image.name)}`, { method: "DELETE" }); load(); });
  const check = async (image) => {
    try { trackTask(await api(`/images/${enc(image.name)}/check`, { method: "POST" })); }
    catch (exc) { setError(exc.message); }
  };
  return html`<section id="images-view" class="view page">
    <h1>Image store</h1>
    <p class="muted">Disk images, container image archives and build outputs kept by this
      server: upload, inspect, check, convert, download, import as a template.</p>
    <${Upload} done=${load} />
    ${error && html`<p class="error" role="alert">${error}</p>`}
    <table id="images"><thead><tr><th>Name</th><th>Kind</th><th>Size</th><th>SHA-256</th>
      <th>Stored by</th><th>At</th><th>Actions</th></tr></thead><tbody>
      ${images.map((image) => html`<tr key=${image.name} data-image=${image.name}>
        <td>${image.name}</td><td>${image.kind}</td><td>${human(image.size)}</td>
        <td><code title=${image.sha256}>${image.sha256.slice(0, 16)}</code></td>
        <td>${image.created_by}</td><td>${stamp(image.created_at)}</td>
        <td class="actions">
          <a href=${`${API}/images/${enc(image.name)}/content`} download=${image.name}>Download</a>
          <button onClick=${async () => setInfo(await api(`/images/${enc(image.name)}`))}>Info</button>
          <button disabled=${!operator} onClick=${() => check(image)}>Check</button>
          <button disabled=${!operator} onClick=${() => convert(image)}>Convert</button>
          <button disabled=${!operator} onClick=${() => importAs(image)}>Import as template</button>
          <button class="danger" disabled=${!operator} onClick=${() => remove(image)}>Delete</button>
        </td></tr>`)}
    </tbody></table>
    ${info && html`<pre id="image-info">${JSON.stringify(info, null, 2)}</pre>`}
  </section>`;
}

function Upload({ done }) {
  const file = useRef(null);
  const name = useRef(null);
  const [progress, setProgress] = useState(null);
  const [status, setStatus] = useState("");
  const send = () => {
    const chosen = file.current.files[0];
    if (!chosen) { setStatus("choose a file first"); return; }
    const target = name.current.value.trim() || chosen.name;
    // XMLHttpRequest, not fetch: only it reports upload progress.
    const request = new XMLHttpRequest();
    request.open("PUT", `${API}/images/${encodeURIComponent(target)}`);
    request.setRequestHeader("X-Glasspane", "1");
    request.setRequestHeader("Content-Type", "application/octet-stream");
    request.upload.onprogress = (event) => {
      if (event.lengthComputable) setProgress(Math.round(100 * event.loaded / event.total));
    };
    request.onload = () => {
      setProgress(null);
      let body;
      try { body = JSON.parse(request.responseText); } catch { body = { detail: request.responseText }; }
      setStatus(request.status === 201 ? `stored ${body.name} (${body.kind}, ${human(body.size)})`
        : `upload failed: ${typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail)}`);
      done();
    };
    request.onerror = () => { setProgress(null); setStatus("upload failed: connection lost"); };
    setProgress(0);
    setStatus(`uploading ${target}…`);
    request.send(chosen);
  };
  return html`<div class="toolbar">
    <input type="file" id="upload-file" ref=${file} aria-label="File to upload" />
    <input id="upload-name" ref=${name} placeholder="Name (default: the file's)" aria-label="Name" />
    <button id="upload-button" disabled=${!can("operator")} onClick=${send}>Upload</button>
    ${progress !== null && html`<progress id="upload-progress" max="100" value=${progress}></progress>`}
    <span id="upload-status" class="muted" role="status">${status}</span>
  </div>`;
}
