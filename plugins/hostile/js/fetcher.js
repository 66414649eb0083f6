// A hostile JavaScript plugin for the gateway's tests: it tries to reach
// the network with `fetch` (to the URL in its config), which a component
// built with componentize-js's defaults imports through `wasi:http`. The
// gateway links `wasi:http` only as stubs that deny, so the call fails with
// a denied-capability error and the event follows `on_plugin_error`.
import { write } from 'gateway:plugin/log@0.1.0';

export function handle(event, target) {
  const { url } = JSON.parse(new TextDecoder().decode(target.config));
  write('info', `fetching ${url}`);
  fetch(url, { method: 'POST', body: event.data });
  return { tag: 'deliver', val: event };
}
