import type { FastifyInstance, FastifyRequest, RouteOptions } from 'fastify';
import { UsageError } from '../errors.js';

/**
 * Integers in paths and query strings are plain decimal: digits only, no sign, exponent, hex,
 * fraction or leading zero, so each face has exactly one URL. The schema's type coercion would
 * read `1e3` as 1000 and `0x10` as 16; this check runs before it (preValidation), on the raw text,
 * for every property a route's schema declares an integer.
 */

const PLAIN_DECIMAL = /^(0|[1-9][0-9]*)$/;

type Part = 'params' | 'querystring';
interface IntegerField {
  part: Part;
  name: string;
}

function integerFields(schema: RouteOptions['schema']): IntegerField[] {
  const fields: IntegerField[] = [];
  for (const part of ['params', 'querystring'] as const) {
    const properties = (schema?.[part] as { properties?: Record<string, { type?: unknown }> } | undefined)?.properties ?? {};
    for (const [name, prop] of Object.entries(properties)) if (prop.type === 'integer') fields.push({ part, name });
  }
  return fields;
}

function rawValue(request: FastifyRequest, f: IntegerField): unknown {
  const source = (f.part === 'params' ? request.params : request.query) as Record<string, unknown> | undefined;
  return source?.[f.name];
}

/** Registers the check on every route added after this call. */
export function registerStrictIntegers(app: FastifyInstance): void {
  app.addHook('onRoute', (route) => {
    const fields = integerFields(route.schema);
    if (fields.length === 0) return;
    const check = async (request: FastifyRequest): Promise<void> => {
      for (const f of fields) {
        const raw = rawValue(request, f);
        if (raw === undefined || (typeof raw === 'string' && PLAIN_DECIMAL.test(raw))) continue;
        const shown = typeof raw === 'string' ? `"${raw}"` : Array.isArray(raw) ? `${raw.length} values` : String(raw);
        throw new UsageError(
          'E_BAD_ARGUMENT',
          `${f.part}/${f.name} must be a plain decimal integer (digits only, no sign, exponent, hex or leading zero) but received ${shown}`,
          {
            hint: `Write ${f.name} in digits, once: e.g. /v1/faces/7/1000.png, not 1e3, 0x3e8 or 01000.`,
          },
        );
      }
    };
    const existing = route.preValidation;
    route.preValidation = existing === undefined ? [check] : [...(Array.isArray(existing) ? existing : [existing]), check];
  });
}
