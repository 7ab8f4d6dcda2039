export { bundledCatalog, type Catalog, catalogFor } from "./bundled-catalog.ts";
