/**
 * lepton-glue: JupyterLab shows myst-nb's glued values in rendered Markdown cells, as the book does.
 *
 * jupyterlab-myst (2.7) has no glue role (jupyter-book/jupyterlab-myst#165): it renders
 * ``{glue:text}`name:.2f` `` as the text ``name:.2f``. This plugin finds, in each rendered Markdown
 * cell of a notebook, the text of every glue role of the cell's source and replaces it by the value
 * myst-nb would paste: the ``text/plain`` that ``glue()`` stored (a display_data output whose
 * metadata is ``{"scrapbook": {"name": ..., "mime_prefix": ...}}``), formatted with the role's
 * Python format spec (./format.ts). Values come from the notebook's current outputs, so they follow
 * a re-run; ``other.ipynb::name`` is read from that notebook's saved outputs (Contents API, relative
 * to this notebook). A role whose value is not found keeps its text.
 *
 * It only rewrites the text of the rendered DOM (never the notebook model, so opening a notebook
 * does not mark it modified) and watches the notebook's DOM to redo it after any re-render.
 */
import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';

import { formatGlued } from './format';

/** A glue role in Markdown source: its kind (text, any, md) and its target ``[doc::]name[:spec]``. */
const ROLE = /\{glue(?::(\w+))?\}`([^`]+)`/g;
// jupyterlab-myst renders into a `.myst` widget; plain JupyterLab into `.jp-RenderedMarkdown`
const RENDERED = '.myst, .jp-RenderedMarkdown';
/** Glued values by name: the mime bundle without the scrapbook prefix. */
type Glued = Map<string, Record<string, unknown>>;

interface Role {
  /** The text jupyterlab-myst shows for the role. */
  shown: string;
  kind: string;
  doc: string | null;
  name: string;
  spec: string;
}

export function parseRole(kind: string | undefined, target: string): Role {
  const role = kind || 'any';
  let doc: string | null = null;
  let rest = target;
  let spec = '';
  if (role === 'text') {
    const cut = target.lastIndexOf(':');
    // myst-nb: target.rsplit(":", 1); a "doc::name" without a spec splits at its "::"
    if (cut >= 0 && target[cut - 1] !== ':') {
      rest = target.slice(0, cut);
      spec = target.slice(cut + 1);
    }
  }
  const sep = rest.indexOf('::');
  if (sep >= 0) {
    doc = rest.slice(0, sep);
    rest = rest.slice(sep + 2);
  }
  return { shown: target, kind: role, doc, name: rest.trim(), spec };
}

/** Every glued value of a notebook's outputs (nbformat JSON), the last one of a name winning. */
export function gluedValues(outputs: Iterable<{ metadata?: unknown; data?: unknown }>): Glued {
  const found: Glued = new Map();
  for (const output of outputs) {
    const scrapbook = (output.metadata as { scrapbook?: { name?: string; mime_prefix?: string } } | undefined)
      ?.scrapbook;
    if (!scrapbook?.name || !output.data) {
      continue;
    }
    const prefix = scrapbook.mime_prefix ?? '';
    const bundle: Record<string, unknown> = {};
    for (const [mime, value] of Object.entries(output.data as Record<string, unknown>)) {
      if (mime.startsWith(prefix)) {
        bundle[mime.slice(prefix.length)] = value;
      }
    }
    found.set(scrapbook.name, bundle);
  }
  return found;
}

/** The text myst-nb pastes for ``role`` from its glued bundle, or null (no value, or not text). */
export function pasted(role: Role, bundle: Record<string, unknown> | undefined): string | null {
  const plain = bundle?.['text/plain'];
  if (plain === undefined) {
    return null;
  }
  const text = Array.isArray(plain) ? plain.join('') : String(plain);
  if (role.kind === 'text') {
    try {
      return formatGlued(text, role.spec);
    } catch (error) {
      console.warn(`lepton-glue: ${role.shown}: ${error}`);
      return null;
    }
  }
  // {glue} and {glue:any} paste the richest output; only a plain-text one is shown here
  const rich = Object.keys(bundle!).some(mime => mime.startsWith('image/') || mime === 'text/html');
  return rich ? null : text;
}

type CellOutputs = { type: string; outputs?: { length: number; get(i: number): { toJSON(): object } } };

/** The glued values of the notebook open in ``panel``, from its current outputs. */
function currentValues(panel: NotebookPanel): Glued {
  const outputs: { metadata?: unknown; data?: unknown }[] = [];
  const cells = panel.content.model?.cells;
  if (!cells) {
    return new Map();
  }
  for (let i = 0; i < cells.length; i++) {
    const cell = cells.get(i) as unknown as CellOutputs;
    if (cell.type !== 'code' || !cell.outputs) {
      continue;
    }
    for (let j = 0; j < cell.outputs.length; j++) {
      outputs.push(cell.outputs.get(j).toJSON() as { metadata?: unknown; data?: unknown });
    }
  }
  return gluedValues(outputs);
}

function dirname(path: string): string {
  const cut = path.lastIndexOf('/');
  return cut < 0 ? '' : path.slice(0, cut);
}

/** ``doc`` relative to the directory ``base``, normalised (``..`` resolved). */
function resolvePath(base: string, doc: string): string {
  const parts: string[] = [];
  for (const part of `${base}/${doc}`.split('/')) {
    if (part === '..') {
      parts.pop();
    } else if (part && part !== '.') {
      parts.push(part);
    }
  }
  return parts.join('/');
}

/** What the plugin wrote into a text node, and the text it replaced. */
const written = new WeakMap<Text, { original: string; shown: string }>();

/** Rewrite the role texts in ``root``'s text nodes; ``values`` maps a role's shown text to its value. */
function rewrite(root: Element, values: Map<string, string>): void {
  const shown = [...values.keys()].sort((a, b) => b.length - a.length);
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  const nodes: Text[] = [];
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    if (!node.parentElement?.closest('code, pre')) {  // a role quoted as code stays as written
      nodes.push(node as Text);
    }
  }
  for (const node of nodes) {
    const record = written.get(node);
    const original = record && record.shown === node.data ? record.original : node.data;
    let text = original;
    for (const target of shown) {
      if (text.includes(target)) {
        text = text.split(target).join(values.get(target)!);
      }
    }
    if (text !== original || record) {
      if (node.data !== text) {
        node.data = text;
      }
      written.set(node, { original, shown: text });
      node.parentElement?.setAttribute('data-lepton-glue', text === original ? 'missing' : 'shown');
    }
  }
}

class NotebookGlue {
  private readonly observer: MutationObserver;
  private timer = 0;
  private readonly others = new Map<string, Promise<Glued>>();

  constructor(
    private readonly panel: NotebookPanel,
    private readonly app: JupyterFrontEnd
  ) {
    this.observer = new MutationObserver(() => this.schedule());
    panel.context.ready.then(() => {
      if (panel.isDisposed) {
        return;
      }
      this.observer.observe(panel.content.node, { childList: true, subtree: true, characterData: true });
      this.schedule();
    });
    panel.context.fileChanged.connect(() => this.others.clear());
    panel.disposed.connect(() => {
      this.observer.disconnect();
      window.clearTimeout(this.timer);
    });
  }

  schedule(): void {
    window.clearTimeout(this.timer);
    this.timer = window.setTimeout(() => void this.update(), 150);
  }

  /** The glued values of another notebook (saved outputs), read once per file save of this one. */
  private other(doc: string): Promise<Glued> {
    const path = resolvePath(dirname(this.panel.context.path), doc);
    let values = this.others.get(path);
    if (!values) {
      values = this.app.serviceManager.contents
        .get(path, { content: true, type: 'notebook' })
        .then(model => {
          const cells = (model.content?.cells ?? []) as { outputs?: { metadata?: unknown; data?: unknown }[] }[];
          return gluedValues(cells.flatMap(cell => cell.outputs ?? []));
        })
        .catch(error => {
          console.warn(`lepton-glue: cannot read ${path}: ${error}`);
          return new Map() as Glued;
        });
      this.others.set(path, values);
    }
    return values;
  }

  private async update(): Promise<void> {
    if (this.panel.isDisposed || !this.panel.content.model) {
      return;
    }
    const here = currentValues(this.panel);
    for (const cell of this.panel.content.widgets) {
      if (cell.model.type !== 'markdown') {
        continue;
      }
      const rendered = cell.node.querySelector(RENDERED);
      const roles = [...cell.model.sharedModel.getSource().matchAll(ROLE)].map(m => parseRole(m[1], m[2]));
      if (!rendered || roles.length === 0) {
        continue;
      }
      const values = new Map<string, string>();
      for (const role of roles) {
        const glued = role.doc === null ? here : await this.other(role.doc);
        const text = pasted(role, glued.get(role.name));
        if (text !== null) {
          values.set(role.shown, text);
        }
      }
      rewrite(rendered, values);
    }
  }
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'lepton-glue:plugin',
  description: "Shows myst-nb glued values in rendered Markdown cells (jupyterlab-myst has no glue role).",
  autoStart: true,
  requires: [INotebookTracker],
  activate: (app: JupyterFrontEnd, tracker: INotebookTracker) => {
    tracker.forEach(panel => new NotebookGlue(panel, app));
    tracker.widgetAdded.connect((_, panel) => new NotebookGlue(panel, app));
  }
};

export default plugin;
