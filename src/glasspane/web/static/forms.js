// Every action's form, in a modal <dialog>: the fields are checked in the browser first
// (their constraints, each message beside its field), then by the server, whose 422
// complaints are shown beside the fields they name, and any other refusal under the form.
// One form is open at a time (`openForm`); a form with no fields asks to confirm.
import { html, signal, useEffect, useRef, useState } from "./lib.js";
import { ApiError } from "./api.js";

export const openDialog = signal(null);

// Values are the fields' defaults (defaultValue), not bound to them: a render while the form
// is open (an error shown) leaves what was typed alone.
// spec: { id, title, fields, submit ("Create"), submitId, danger, text, run(values) }; a field:
// { name, label, type (text, number, textarea, select, checkbox, password), required, min, max,
//   pattern, maxLength, options [[value, label]], value, placeholder, hint, id, title }
export const openForm = (spec) => { openDialog.value = spec; };

export function Dialogs() {
  const spec = openDialog.value;
  return spec ? html`<${FormDialog} key=${spec.id + (spec.title || "")} spec=${spec} />` : null;
}

function valuesOf(form, fields) {
  const values = {};
  for (const field of fields) {
    const input = form.elements.namedItem(field.name);
    if (field.type === "checkbox") values[field.name] = input.checked;
    else if (field.type === "number") values[field.name] = input.value === "" ? null : Number(input.value);
    else values[field.name] = input.value;
  }
  return values;
}

function FormDialog({ spec }) {
  const dialog = useRef(null);
  const [errors, setErrors] = useState({});
  const [general, setGeneral] = useState("");
  const [busy, setBusy] = useState(false);
  const fields = spec.fields || [];

  useEffect(() => {
    const node = dialog.current;
    if (!node.open) node.showModal();
    const closed = () => { if (openDialog.value === spec) openDialog.value = null; };
    node.addEventListener("close", closed);
    return () => node.removeEventListener("close", closed);
  }, []);

  const onSubmit = async (event) => {
    event.preventDefault();
    const form = event.target;
    const found = {};
    for (const field of fields) {
      const input = form.elements.namedItem(field.name);
      if (!input.checkValidity()) found[field.name] = input.validationMessage;
    }
    setErrors(found);
    setGeneral("");
    if (Object.keys(found).length) {
      form.elements.namedItem(Object.keys(found)[0]).focus();
      return;
    }
    setBusy(true);
    try {
      await spec.run(valuesOf(form, fields));
      dialog.current.close();
    } catch (exc) {
      const byField = exc instanceof ApiError ? exc.fields : {};
      const known = Object.fromEntries(Object.entries(byField)
        .filter(([name]) => fields.some((field) => field.name === name)));
      setErrors(known);
      const rest = Object.entries(byField).filter(([name]) => !(name in known));
      setGeneral(Object.keys(known).length && !rest.length ? ""
        : (rest.length ? rest.map(([k, v]) => `${k}: ${v}`).join("; ") : exc.message));
    } finally {
      setBusy(false);
    }
  };

  const cancel = () => dialog.current.close();
  return html`<dialog id=${spec.id} ref=${dialog} aria-labelledby=${`${spec.id}-title`}>
    <form id=${`${spec.id}-form`} noValidate onSubmit=${onSubmit}>
      <h2 id=${`${spec.id}-title`}>${spec.title}</h2>
      ${spec.text && html`<p>${spec.text}</p>`}
      ${fields.map((field) => html`<${Field} key=${field.name} form=${spec.id} field=${field}
                                            error=${errors[field.name]} />`)}
      <p id=${`${spec.id}-error`} class="error" role="alert">${general}</p>
      <menu>
        <button type="button" onClick=${cancel}>Cancel</button>
        <button type="submit" id=${spec.submitId} class=${spec.danger ? "danger" : ""}
                disabled=${busy}>${spec.submit || "OK"}</button>
      </menu>
    </form>
  </dialog>`;
}

function Field({ form, field, error }) {
  const id = field.id || `${form}-${field.name}`;
  const errorId = `${id}-error`;
  const common = { id, name: field.name, required: field.required, "aria-invalid": error ? "true" : undefined,
                   "aria-describedby": error ? errorId : undefined, title: field.title };
  let input;
  if (field.type === "textarea") {
    input = html`<textarea ...${common} rows=${field.rows || 3} maxLength=${field.maxLength}
      spellcheck=${field.spellcheck ?? true} defaultValue=${field.value ?? ""} />`;
  } else if (field.type === "select") {
    input = html`<select ...${common}>${(field.options || []).map(([value, label]) => html`
      <option value=${value} selected=${value === field.value}>${label}</option>`)}</select>`;
  } else if (field.type === "checkbox") {
    input = html`<input ...${common} type="checkbox" defaultChecked=${!!field.value} />`;
  } else {
    input = html`<input ...${common} type=${field.type || "text"} min=${field.min} max=${field.max}
      pattern=${field.pattern} maxLength=${field.maxLength} placeholder=${field.placeholder}
      defaultValue=${field.value ?? ""} autocomplete=${field.autocomplete || "off"} />`;
  }
  return html`<div class=${`field${field.type === "checkbox" ? " check" : ""}`}>
    <label for=${id}>${field.label}</label>
    ${input}
    ${field.hint && html`<small class="muted">${field.hint}</small>`}
    <p class="error field-error" id=${errorId} data-error-for=${field.name}>${error || ""}</p>
  </div>`;
}

export function confirmThen(title, text, submit, run) {
  openForm({ id: "confirm", title, text, submit, danger: true, fields: [], run });
}
