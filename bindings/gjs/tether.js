// SPDX-License-Identifier: LGPL-2.1-or-later
//
// Tether for GJS: promise-based calls, JavaScript values for GVariants,
// and plain or async functions as method handlers.
//
//     import Tether from 'gi://Tether?version=1.0';
//
//     const client = new Tether.Client({uri: 'unix:/tmp/tether-demo.sock'});
//     client.addMethod('progress', params => true);
//     await client.open();
//     const result = await client.call('work', {steps: 3, delay_ms: 200});
//     client.close();
//
// This file reaches programs in two forms. The build makes it the GJS
// override of the Tether namespace (overrides/Tether.js, see
// make-override.py), installed into PREFIX/share/gjs-1.0/overrides, where
// GJS looks by itself for /usr and /usr/local (elsewhere: GJS_PATH=
// PREFIX/share/gjs-1.0; `meson devenv` points GJS_PATH at the build tree):
// then `gi://Tether` has everything below. It is also installed as an ES
// module, which GJS 1.74 imports only by its file URI (it has no search
// path for ES modules): `file://PREFIX/share/tether-1/gjs/tether.js`. Its
// default export is the same `gi://Tether` namespace. Either way these are
// added to the namespace and its classes (the typelib's own methods, such
// as `call_async`, stay available):
//
//   Client:     open(cancellable?) -> Promise<client>
//               call(method, params?, options?) -> Promise<value>
//               sendNotification(method, params?, options?)
//               addMethod(name, handler, options?)
//   Server:     addMethod(name, handler, options?)    options.access defaults
//               to Tether.Access.AUTHENTICATED, as in C
//   Peer:       call(method, params?, options?), sendNotification(...)
//   Invocation: callPeer(method, params?, options?) -> Promise<value>
//               returnValue(value, signature?)
//   Tether.toVariant(value, signature?), Tether.fromVariant(variant),
//   Tether.remoteError(code, message), Tether.isRemoteError(error, code?)
//
// Call options: {timeoutMsec = -1, cancellable = null, signature = null,
// raw = false}. addMethod options: {signature, paramNames} declare the
// params (add_method_full), {resultSignature} types the answer. No helper is called `connect` (GObject signals) or
// `notify`: connecting is `open()`.
//
// Values. To a GVariant, as the JSON mapping expects (docs/protocol.md):
// object or Map -> a{sv}, Array -> av, string -> s, boolean -> b,
// null/undefined -> mv Nothing (JSON null), an integer Number within int64
// -> x (JavaScript cannot tell 2.0 from 2), any other Number -> d, BigInt
// -> x. With a `signature` the value is built to that type (`v` members
// use the mapping above). A GLib.Variant is passed through anywhere in a
// value. From a GVariant: a{s*} -> object, arrays and tuples -> Array,
// Nothing -> null, and 64-bit integers -> Number when it holds them
// exactly, BigInt otherwise (so int64 extremes round-trip). `raw: true`
// returns the GLib.Variant itself.
//
// Handlers are `handler(params, invocation)`: params as JavaScript values
// (null when the call had none); the invocation for callbacks
// (`await invocation.callPeer(...)`), the caller's identity or deadline. A
// handler may be an async function. What it returns (or its promise
// resolves to) is the answer; undefined and null answer JSON null.
// Throwing answers with an error: a GLib.Error of the TETHER_REMOTE_ERROR
// domain (`Tether.remoteError(4001, 'Out of paper')`) sends its code,
// another GLib.Error goes through return_gerror() (TETHER_ERROR and GIO's
// cancelled / timed out map to their JSON-RPC codes, anything else is
// -32603), and anything else answers -32603 with its message and is
// logged. A handler that answered the invocation itself is not answered
// again; one that returns `Tether.REPLY_LATER` answers it later.
//
// Errors. Calls reject with the GLib.Error Tether reported, so
// `e.matches(Tether.RemoteError, Tether.RemoteError.METHOD_NOT_FOUND)`,
// `e.matches(Tether.RemoteError, 4001)`,
// `e.matches(Gio.IOErrorEnum, Gio.IOErrorEnum.TIMED_OUT)` and
// `e.matches(Tether.Error, Tether.Error.RESOURCE_EXHAUSTED)` work. Cancel a
// call with a Gio.Cancellable in its options (the peer gets rpc.cancel).

import GLib from 'gi://GLib';
import Tether from 'gi://Tether?version=1.0';

const INTERNAL_ERROR = -32603;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

const TYPE_V = new GLib.VariantType('v');
const TYPE_SV_ENTRY = new GLib.VariantType('{sv}');

// -- values -----------------------------------------------------------------

function untyped(value) {
    if (value === null || value === undefined)
        return GLib.Variant.new_maybe(TYPE_V, null);
    if (value instanceof GLib.Variant)
        return value;
    switch (typeof value) {
    case 'boolean':
        return GLib.Variant.new_boolean(value);
    case 'string':
        return GLib.Variant.new_string(value);
    case 'bigint':
        if (value < INT64_MIN || value > INT64_MAX)
            throw new RangeError(`${value} does not fit in a JSON-RPC integer (int64)`);
        return new GLib.Variant('x', value);
    case 'number':
        // 2**63 is the first double above INT64_MAX.
        if (Number.isInteger(value) && value >= -(2 ** 63) && value < 2 ** 63)
            return Number.isSafeInteger(value) ? GLib.Variant.new_int64(value)
                : new GLib.Variant('x', BigInt(value));
        return GLib.Variant.new_double(value);
    case 'object':
        break;
    default:
        throw new TypeError(`a ${typeof value} has no JSON-RPC mapping`);
    }
    if (Array.isArray(value))
        return GLib.Variant.new_array(TYPE_V, value.map(v => GLib.Variant.new_variant(untyped(v))));
    const entries = value instanceof Map ? [...value.entries()] : plainEntries(value);
    return GLib.Variant.new_array(TYPE_SV_ENTRY, entries.map(([k, v]) => {
        if (typeof k !== 'string')
            throw new TypeError('JSON object keys must be strings');
        return GLib.Variant.new_dict_entry(GLib.Variant.new_string(k),
            GLib.Variant.new_variant(untyped(v)));
    }));
}

function plainEntries(value) {
    const proto = Object.getPrototypeOf(value);
    if (proto !== Object.prototype && proto !== null)
        throw new TypeError(`${value.constructor?.name ?? 'this object'} has no JSON-RPC mapping`);
    return Object.entries(value);
}

// The member types of a tuple type string. Not first()/next(): GJS copies
// each returned GVariantType, and a copy's next() finds no sibling.
function tupleMembers(sig) {
    const members = [];
    let i = 1;
    while (i < sig.length - 1) {
        const end = typeEnd(sig, i);
        members.push(sig.slice(i, end));
        i = end;
    }
    return members;
}

function typeEnd(sig, i) {
    if (sig[i] === 'a' || sig[i] === 'm')
        return typeEnd(sig, i + 1);
    if (sig[i] !== '(' && sig[i] !== '{')
        return i + 1;
    let depth = 0;
    for (; i < sig.length; i++) {
        if (sig[i] === '(' || sig[i] === '{')
            depth++;
        else if ((sig[i] === ')' || sig[i] === '}') && --depth === 0)
            return i + 1;
    }
    throw new TypeError(`invalid type string ${sig}`);
}

function typed(type, value) {
    const sig = type.dup_string();
    if (value instanceof GLib.Variant) {
        if (value.get_type().equal(type))
            return value;
        if (type.equal(TYPE_V))
            return GLib.Variant.new_variant(value);
        throw new TypeError(`expected a value of type ${sig}, ` +
            `got a GLib.Variant of type ${value.get_type_string()}`);
    }
    if (type.equal(TYPE_V))
        return GLib.Variant.new_variant(untyped(value));
    if (type.is_maybe()) {
        const element = type.element();
        return GLib.Variant.new_maybe(element,
            value === null || value === undefined ? null : typed(element, value));
    }
    if (type.is_array()) {
        const element = type.element();
        if (element.is_dict_entry()) {
            if (value === null || typeof value !== 'object' || Array.isArray(value))
                throw new TypeError(`expected an object for ${sig}`);
            const entries = value instanceof Map ? [...value.entries()] : Object.entries(value);
            return GLib.Variant.new_array(element, entries.map(([k, v]) =>
                GLib.Variant.new_dict_entry(typed(element.key(), k), typed(element.value(), v))));
        }
        if (!Array.isArray(value))
            throw new TypeError(`expected an array for ${sig}`);
        return GLib.Variant.new_array(element, value.map(v => typed(element, v)));
    }
    if (type.is_tuple()) {
        const members = tupleMembers(sig).map(m => new GLib.VariantType(m));
        if (!Array.isArray(value) || value.length !== members.length)
            throw new TypeError(`expected an array of ${members.length} values for ${sig}`);
        return GLib.Variant.new_tuple(members.map((t, i) => typed(t, value[i])));
    }
    if (type.is_basic()) {
        const wide = sig === 'x' || sig === 't';
        if (wide && typeof value === 'number' && !Number.isSafeInteger(value))
            return new GLib.Variant(sig, BigInt(value));
        return new GLib.Variant(sig, value);
    }
    throw new TypeError(`type ${sig} has no JSON-RPC mapping`);
}

/**
 * A GLib.Variant for `value` (see the top of this file). Without
 * `signature` the JSON mapping applies; a GLib.Variant is returned as is.
 */
export function toVariant(value, signature = null) {
    if (value instanceof GLib.Variant)
        return value;
    if (signature === null || signature === undefined)
        return untyped(value);
    const type = signature instanceof GLib.VariantType
        ? signature : new GLib.VariantType(signature);
    return typed(type, value);
}

function integer64(variant) {
    // get_int64() would round beyond 2^53 (with a warning); the text is exact.
    const n = BigInt(variant.print(false));
    return n >= BigInt(Number.MIN_SAFE_INTEGER) && n <= BigInt(Number.MAX_SAFE_INTEGER)
        ? Number(n) : n;
}

/** Plain JavaScript values for a GLib.Variant (null stays null). */
export function fromVariant(variant) {
    if (variant === null || variant === undefined)
        return null;
    const sig = variant.get_type_string();
    switch (sig[0]) {
    case 'v':
        return fromVariant(variant.get_variant());
    case 'm':
        return variant.n_children() === 0 ? null : fromVariant(variant.get_child_value(0));
    case 'x':
    case 't':
        return integer64(variant);
    case 'a':
        if (sig[1] === '{') {
            const object = {};
            for (let i = 0; i < variant.n_children(); i++) {
                const entry = variant.get_child_value(i);
                object[String(fromVariant(entry.get_child_value(0)))] =
                    fromVariant(entry.get_child_value(1));
            }
            return object;
        }
    // falls through: other arrays, tuples and dict entries are Arrays
    case '(':
    case '{': {
        const array = [];
        for (let i = 0; i < variant.n_children(); i++)
            array.push(fromVariant(variant.get_child_value(i)));
        return array;
    }
    default:
        return variant.unpack();
    }
}

// -- errors -------------------------------------------------------------------

/** A GLib.Error in the TETHER_REMOTE_ERROR domain: throw it from a handler. */
export function remoteError(code, message = '') {
    return new GLib.Error(Tether.RemoteError, code, message);
}

/** Whether `error` is an answer of the peer (with `code`, if given). */
export function isRemoteError(error, code = null) {
    return error instanceof GLib.Error && error.domain === Tether.remote_error_quark() &&
        (code === null || error.code === code);
}

// -- calls --------------------------------------------------------------------

function awaitPair(start, finish, cancellable) {
    return new Promise((resolve, reject) => {
        start(cancellable ?? null, (source, result) => {
            try {
                resolve(finish(result));
            } catch (error) {
                reject(error);
            }
        });
    });
}

function paramsVariant(params, signature) {
    return params === null || params === undefined ? null : toVariant(params, signature);
}

async function call(self, method, params, options = {}) {
    const {timeoutMsec = -1, cancellable = null, signature = null, raw = false} = options;
    const variant = paramsVariant(params, signature);
    const result = await awaitPair(
        (c, cb) => self.call_async(method, variant, timeoutMsec, c, cb),
        r => self.call_finish(r), cancellable);
    return raw ? result : fromVariant(result);
}

function sendNotification(self, method, params, options = {}) {
    return self.send_notification(method, paramsVariant(params, options.signature ?? null));
}

// -- handlers -----------------------------------------------------------------

/** Returned by a handler that keeps its invocation and answers it itself. */
export const REPLY_LATER = Symbol.for('Tether.REPLY_LATER');

function replyError(invocation, method, error) {
    if (invocation.has_replied())
        return;
    if (error instanceof GLib.Error) {
        if (error.domain === Tether.remote_error_quark())
            invocation.return_error_literal(error.code, error.message);
        else
            invocation.return_gerror(error);
        return;
    }
    logError(error, `The handler of ${method} threw; answering ${INTERNAL_ERROR}`);
    const text = error instanceof Error ? error.message || error.name : String(error);
    invocation.return_error_literal(INTERNAL_ERROR, text);
}

function replyValue(invocation, method, value, resultSignature) {
    if (value === REPLY_LATER || invocation.has_replied())
        return;
    let variant;
    try {
        variant = toVariant(value ?? null, resultSignature);
    } catch (error) {
        replyError(invocation, method, error);
        return;
    }
    invocation.return_value(variant);
}

function methodHandler(handler, resultSignature) {
    if (typeof handler !== 'function')
        throw new TypeError('the handler must be a function');
    return invocation => {
        const method = invocation.get_method_name();
        let value;
        try {
            value = handler(fromVariant(invocation.get_parameters()), invocation);
        } catch (error) {
            replyError(invocation, method, error);
            return;
        }
        if (value !== null && typeof value?.then === 'function') {
            // The closure keeps the invocation alive until the promise settles.
            value.then(v => replyValue(invocation, method, v, resultSignature),
                error => replyError(invocation, method, error));
        } else {
            replyValue(invocation, method, value, resultSignature);
        }
    };
}

// -- the classes ---------------------------------------------------------------

function define(klass, methods) {
    for (const [name, fn] of Object.entries(methods)) {
        Object.defineProperty(klass.prototype, name, {
            value: fn, writable: true, configurable: true, enumerable: false,
        });
    }
}

define(Tether.Client, {
    open(cancellable = null) {
        return awaitPair((c, cb) => this.connect_async(c, cb),
            r => this.connect_finish(r), cancellable).then(() => this);
    },
    call(method, params = null, options = {}) {
        return call(this, method, params, options);
    },
    sendNotification(method, params = null, options = {}) {
        return sendNotification(this, method, params, options);
    },
    addMethod(name, handler, options = {}) {
        const {signature = null, paramNames = null, resultSignature = null} = options;
        const trampoline = methodHandler(handler, resultSignature);
        if (signature === null && paramNames === null)
            this.add_method(name, trampoline);
        else
            this.add_method_full(name, signature, paramNames, trampoline);
    },
});

define(Tether.Server, {
    addMethod(name, handler, options = {}) {
        const {
            access = Tether.Access.AUTHENTICATED, signature = null,
            paramNames = null, resultSignature = null,
        } = options;
        const trampoline = methodHandler(handler, resultSignature);
        if (signature === null && paramNames === null)
            this.add_method(name, access, trampoline);
        else
            this.add_method_full(name, signature, paramNames, access, trampoline);
    },
});

define(Tether.Peer, {
    call(method, params = null, options = {}) {
        return call(this, method, params, options);
    },
    sendNotification(method, params = null, options = {}) {
        return sendNotification(this, method, params, options);
    },
});

define(Tether.Invocation, {
    async callPeer(method, params = null, options = {}) {
        const {timeoutMsec = -1, cancellable = null, signature = null, raw = false} = options;
        const variant = paramsVariant(params, signature);
        const result = await awaitPair(
            (c, cb) => this.call_peer_async(method, variant, timeoutMsec, c, cb),
            r => this.call_peer_finish(r), cancellable);
        return raw ? result : fromVariant(result);
    },
    returnValue(value = null, signature = null) {
        this.return_value(toVariant(value, signature));
    },
});

Object.assign(Tether, {toVariant, fromVariant, remoteError, isRemoteError, REPLY_LATER});

export default Tether;
