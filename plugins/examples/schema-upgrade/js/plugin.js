// The component's entry: the shared WIT glue (`sdk-js/glue.js`) around this
// example's `handle` in `lib.js`.
import { entry } from '../../../sdk-js/glue.js';
import { handle as plugin } from './lib.js';

export const handle = entry(plugin);
