// Starts GraphiQL against this server's /graphql. Everything it loads comes from this server.
"use strict";
(function () {
  const fetcher = GraphiQL.createFetcher({ url: "/graphql" });
  const root = ReactDOM.createRoot(document.getElementById("graphiql"));
  root.render(
    React.createElement(GraphiQL, {
      fetcher,
      defaultEditorToolsVisibility: true,
      // Header mode reads X-User / X-App; jwt mode wants an Authorization header.
      defaultHeaders: '{\n  "X-User": "",\n  "X-App": "graphiql"\n}',
      shouldPersistHeaders: false,
    }),
  );
})();
