// The unit tests cover the modules that do not import JupyterLab (API client, live feed,
// paging, schema forms, plot scales), so they run in plain Node without a DOM.
export default {
  test: { include: ['src/__tests__/**/*.spec.ts'], environment: 'node' }
};
