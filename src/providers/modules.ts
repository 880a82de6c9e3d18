/**
 * The provider registry: one line per provider folder. Adding a provider is a folder
 * src/providers/<id>/ whose module.ts exports a ProviderModule, plus its line here;
 * src/providers/index.ts derives everything else from this list.
 */
export { descomModule } from './descom/module.js';
export { ovhModule } from './ovh/module.js';
export { simulatorModule } from './simulator/module.js';
