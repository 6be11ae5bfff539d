// The login form: the server sets the session's cookie.
import { html, useState } from "../lib.js";
import { api } from "../api.js";

export function Login({ started }) {
  const [error, setError] = useState("");
  const submit = async (event) => {
    event.preventDefault();
    const form = new FormData(event.target);
    setError("");
    try {
      await api("/auth/login", { method: "POST",
                                 body: { name: form.get("name"), password: form.get("password") } });
      await started();
    } catch (exc) { setError(exc.message); }
  };
  return html`<section id="login">
    <form id="login-form" class="card" onSubmit=${submit}>
      <h1>glasspane</h1>
      <label>User <input name="name" autocomplete="username" required /></label>
      <label>Password <input name="password" type="password" autocomplete="current-password" required /></label>
      <button type="submit">Log in</button>
      <p id="login-error" class="error" role="alert">${error}</p>
    </form>
  </section>`;
}
