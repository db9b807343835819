// The browser app's entry: the operations dashboard at /ops, the chat anywhere else.
import { render } from "preact";
import { App } from "./components/app.js";
import { OpsPage } from "./components/ops-page.js";
import "./app.css";

const root = document.getElementById("app");
if (root) render(location.pathname === "/ops" ? <OpsPage /> : <App />, root);
