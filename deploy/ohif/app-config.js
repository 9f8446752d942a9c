/** @type {AppTypes.Config} */
// OHIF 3.x configuration for viewing a dxhub archive through DICOMweb.
//
// Replace `dist/app-config.js` of the OHIF build (`npm pack @ohif/app@3.13`, then
// `package/dist/`) with this file and change the ROOT below to dxhub's DICOMweb root:
//
//   - same origin (OHIF and dxhub behind one reverse proxy, or OHIF served by a proxy that
//     forwards /dicomweb/ to dxhub):        'https://pacs.example.org/dicomweb'
//   - cross-origin (OHIF on its own host):   dxhub's own URL, and list OHIF's origin in
//     dxhub's `http.cors_origins` so the browser may send `Authorization` to it.
//
// Authentication: dxhub's DICOMweb wants `Authorization: Bearer <session token>` (the
// `dxs_…` tokens of /api/v1). OHIF sends exactly that when the viewer is opened with the
// token in the URL: `/viewer?StudyInstanceUIDs=<uid>&token=<dxs_…>` (OHIF removes it from
// the address bar and keeps it for the session; the study list reached from there uses it
// too). See deploy/ohif/README.md.
//
// The test suite (tests/js/serve_ohif.mjs) fills in the placeholder below.
const ROOT = 'https://dxhub.example/dicomweb';

window.config = {
  name: 'dxhub',
  routerBasename: null,
  extensions: [],
  modes: [],
  customizationService: {},
  showStudyList: true,
  maxNumberOfWebWorkers: 3,
  showWarningMessageForCrossOrigin: false,
  showCPUFallbackMessage: true,
  showLoadingIndicator: true,
  strictZSpacingForVolumeViewport: true,
  groupEnabledModesFirst: true,
  maxNumRequests: {
    interaction: 100,
    thumbnail: 5,
    prefetch: 25,
  },
  showErrorDetails: 'always',
  defaultDataSourceName: 'dxhub',
  dataSources: [
    {
      namespace: '@ohif/extension-default.dataSourcesModule.dicomweb',
      sourceName: 'dxhub',
      configuration: {
        friendlyName: 'dxhub',
        name: 'dxhub',
        qidoRoot: ROOT,
        wadoRoot: ROOT,
        wadoUriRoot: ROOT,
        // dxhub answers QIDO-RS `includefield`, `*`/`?` wildcards and fuzzy person names
        qidoSupportsIncludeField: true,
        supportsWildcard: true,
        supportsFuzzyMatching: true,
        // pixels through WADO-RS frames, thumbnails through WADO-RS too (no /rendered)
        imageRendering: 'wadors',
        thumbnailRendering: 'wadors',
        enableStudyLazyLoad: true,
        supportsReject: false,
        supportsInstanceMetadata: false,
        dicomUploadEnabled: false,
        // multipart/related; type="application/octet-stream" without quotes
        omitQuotationForMultipartRequest: true,
        bulkDataURI: {
          enabled: true,
        },
      },
    },
  ],
};
