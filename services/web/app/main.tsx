// The browser app's entry: mounts the chat into #app. (Scaffold: the app itself is being written.)
import { render } from "preact";

function App() {
  return <h1>Parley</h1>;
}

const root = document.getElementById("app");
if (root) render(<App />, root);
