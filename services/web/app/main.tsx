// The browser app's entry: mounts the chat into #app.
import { render } from "preact";
import { App } from "./components/app.js";
import "./app.css";

const root = document.getElementById("app");
if (root) render(<App />, root);
