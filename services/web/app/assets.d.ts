// esbuild bundles imported stylesheets into /app.css (services/web/app-bundle.ts).
declare module "*.css";
