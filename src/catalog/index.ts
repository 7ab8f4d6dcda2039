export { bundledCatalog, type Catalog } from "./bundled-catalog.ts";
