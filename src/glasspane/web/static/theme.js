// Light and dark: the system's choice (prefers-color-scheme, in style.css) unless the switch
// says otherwise; the choice is kept in this browser.
import { signal } from "./lib.js";

const SAVED = "glasspane.theme";
const CHOICES = ["auto", "light", "dark"];
export const theme = signal(CHOICES.includes(localStorage.getItem(SAVED)) ? localStorage.getItem(SAVED) : "auto");

function apply(choice) {
  if (choice === "auto") delete document.documentElement.dataset.theme;
  else document.documentElement.dataset.theme = choice;
}
apply(theme.value);

export function nextTheme() {
  theme.value = CHOICES[(CHOICES.indexOf(theme.value) + 1) % CHOICES.length];
  localStorage.setItem(SAVED, theme.value);
  apply(theme.value);
}
