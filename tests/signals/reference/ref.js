// Test-only bridge to the IAB reference implementations (@iabtechlabtcf/core, @iabgpp/cmpapi).
// Reads one JSON request a line on stdin, writes one JSON reply a line on stdout, in order:
//   {"op": "encode_tcf", "model": {...}}      -> {"ok": "<TC string>"}
//   {"op": "decode_tcf", "string": "..."}     -> {"ok": {TCModel fields}}
//   {"op": "encode_gpp", "sections": {name: {Field: value}}} -> {"ok": "<GPP string>"}
//   {"op": "decode_gpp", "string": "..."}     -> {"ok": {"sectionIds": [...], name: {...}}}
//   {"op": "bench_tcf", "strings": [...]}     -> {"ok": {"n": count, "seconds": s}}
//   {"op": "generate_tcf_file", "n": N, "seed": S, "path": P} -> {"ok": {"n": N, "seconds": s}}
//       writes N TC strings (one a line) from random, realistic models (benchmarks/bench_decode.py)
//   {"op": "bench_tcf_file", "path": P}       -> {"ok": {"n": count, "seconds": s}} (decode time only)
// Any failure gives {"error": "<message>"}. One process serves a whole pytest session.
"use strict";
const readline = require("readline");
const { TCModel, TCString, GVL, PurposeRestriction, SegmentEncoder } = require("@iabtechlabtcf/core");
const { GppModel, RangeEntry } = require("@iabgpp/cmpapi");

const MAX_VENDOR = 2000;
const gvls = new Map();

function vendorList(vendorListVersion, tcfPolicyVersion) {
  const ids = (from, to) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
  const named = (list) => Object.fromEntries(list.map((id) => [String(id), { id, name: `p${id}` }]));
  const vendors = {};
  for (let id = 1; id <= MAX_VENDOR; id++) {
    vendors[String(id)] = {
      id, name: `v${id}`, purposes: ids(1, 11), legIntPurposes: ids(2, 11), flexiblePurposes: ids(2, 11),
      specialPurposes: [1], features: [], specialFeatures: [], policyUrl: "",
    };
  }
  return {
    gvlSpecificationVersion: 3, vendorListVersion, tcfPolicyVersion, lastUpdated: "2024-01-01T00:00:00Z",
    purposes: named(ids(1, 11)), specialPurposes: named([1, 2, 3]), features: named([1, 2, 3]),
    specialFeatures: named([1, 2]), stacks: {}, dataCategories: {}, vendors,
  };
}

function gvlFor(vlv, policy, language) {
  const key = `${vlv}/${policy}/${language}`;
  if (!gvls.has(key)) gvls.set(key, new GVL(vendorList(vlv, policy), { language }));
  return gvls.get(key);
}

function buildModel(m) {
  const model = new TCModel();
  model.cmpId = m.cmpId;
  model.cmpVersion = m.cmpVersion;
  model.consentScreen = m.consentScreen;
  model.isServiceSpecific = m.isServiceSpecific;
  model.useNonStandardTexts = m.useNonStandardTexts;
  model.purposeOneTreatment = m.purposeOneTreatment;
  model.publisherCountryCode = m.publisherCountryCode;
  for (const name of ["specialFeatureOptins", "purposeConsents", "purposeLegitimateInterests",
    "vendorConsents", "vendorLegitimateInterests", "vendorsDisclosed", "vendorsAllowed",
    "publisherConsents", "publisherLegitimateInterests", "publisherCustomConsents",
    "publisherCustomLegitimateInterests"]) {
    if (m[name] && m[name].length) model[name].set(m[name]);
  }
  model.numCustomPurposes = m.numCustomPurposes || 0;
  for (const r of m.publisherRestrictions || []) {
    const restriction = new PurposeRestriction(r.purposeId, r.restrictionType);
    for (const v of r.vendors) model.publisherRestrictions.add(v, restriction);
  }
  return model;
}

function encodeTcf(m) {
  const model = buildModel(m);
  model.gvl = gvlFor(m.vendorListVersion, m.tcfPolicyVersion, m.consentLanguage);
  model.created = new Date(m.created);
  model.lastUpdated = new Date(m.lastUpdated);
  return TCString.encode(model, { segments: m.segments });
}

// The official segment encoder without TCString.encode's semantic pre-pass (which deep-clones the
// model and its GVL on every call: about 13 ms a string). The pre-pass only takes the language, list
// and policy versions from the GVL and drops what the GVL forbids; realisticModel() never sets those,
// so the strings are the same (test_reference_property checks it on a sample).
function encodeTcfFast(m) {
  const model = buildModel(m);
  model.version = 2;
  model.consentLanguage = m.consentLanguage;
  model.vendorListVersion = m.vendorListVersion;
  model.policyVersion = m.tcfPolicyVersion;
  model.publisherRestrictions.gvl = gvlFor(m.vendorListVersion, m.tcfPolicyVersion, m.consentLanguage);
  model.created = new Date(m.created);
  model.lastUpdated = new Date(m.lastUpdated);
  return m.segments.map((segment) => SegmentEncoder.encode(model, segment)).join(".");
}

const ids = (vector) => { const out = []; vector.forEach((has, id) => { if (has) out.push(id); }); return out; };

function decodeTcf(s) {
  const m = TCString.decode(s);
  const out = {
    version: m.version, created: m.created.toISOString(), lastUpdated: m.lastUpdated.toISOString(),
    cmpId: m.cmpId, cmpVersion: m.cmpVersion, consentScreen: m.consentScreen,
    consentLanguage: m.consentLanguage, vendorListVersion: m.vendorListVersion,
    purposeConsents: ids(m.purposeConsents), vendorConsents: ids(m.vendorConsents),
  };
  if (m.version === 1) return out;
  Object.assign(out, {
    tcfPolicyVersion: m.policyVersion, isServiceSpecific: m.isServiceSpecific,
    useNonStandardTexts: m.useNonStandardTexts, specialFeatureOptins: ids(m.specialFeatureOptins),
    purposeLegitimateInterests: ids(m.purposeLegitimateInterests), purposeOneTreatment: m.purposeOneTreatment,
    publisherCountryCode: m.publisherCountryCode, vendorLegitimateInterests: ids(m.vendorLegitimateInterests),
    publisherRestrictions: m.publisherRestrictions.getRestrictions().map((r) => ({
      purposeId: r.purposeId, restrictionType: r.restrictionType,
      vendors: m.publisherRestrictions.getVendors(r),
    })).sort((a, b) => a.purposeId - b.purposeId || a.restrictionType - b.restrictionType),
    vendorsDisclosed: ids(m.vendorsDisclosed), vendorsAllowed: ids(m.vendorsAllowed),
    publisherConsents: ids(m.publisherConsents), publisherLegitimateInterests: ids(m.publisherLegitimateInterests),
    numCustomPurposes: m.numCustomPurposes, publisherCustomConsents: ids(m.publisherCustomConsents),
    publisherCustomLegitimateInterests: ids(m.publisherCustomLegitimateInterests),
  });
  return out;
}

function encodeGpp(sections) {
  const model = new GppModel();
  for (const [name, fields] of Object.entries(sections)) {
    for (const [field, value] of Object.entries(fields)) {
      // publisher restrictions are RangeEntry objects in iabgpp-es; JSON gives {key, type, ids}
      const v = field.endsWith("Restrictions") ? value.map((e) => new RangeEntry(e.key, e.type, e.ids)) : value;
      model.setFieldValue(name, field, v);
    }
  }
  return model.encode();
}

function decodeGpp(s) {
  const model = new GppModel(s);
  const out = { sectionIds: model.getSectionIds() };
  for (const name of model.sections.keys()) {
    const fields = model.getSection(name);
    try {
      fields.GpcSegmentIncluded = model.getFieldValue(name, "GpcSegmentIncluded");
    } catch (e) {
      // this section has no GPC sub-section
    }
    out[name] = fields;
  }
  return JSON.parse(JSON.stringify(out));
}

function benchTcf(strings) {
  const start = process.hrtime.bigint();
  let n = 0;
  for (const s of strings) { TCString.decode(s); n++; }
  return { n, seconds: Number(process.hrtime.bigint() - start) / 1e9 };
}

function prng(seed) {
  // mulberry32: a small seeded generator, so a benchmark run can be repeated exactly
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function someOf(rand, from, to, share) {
  const out = [];
  for (let id = from; id <= to; id++) if (rand() < share) out.push(id);
  return out;
}

// A realistic mix: reject-all, accept-all (dense bitfields), partial choices, and a few vendors
// (range encoding); a TCF 2.3 disclosed-vendors segment on most; publisher restrictions on some.
function realisticModel(rand) {
  const all = 900 + Math.floor(rand() * 500);
  const kind = rand();
  let consents;
  if (kind < 0.25) consents = [];
  else if (kind < 0.6) consents = someOf(rand, 1, all, 0.85);
  else if (kind < 0.85) consents = someOf(rand, 1, all, 0.1 + rand() * 0.3);
  else consents = someOf(rand, 1, 60, 0.1);
  const li = kind < 0.25 ? [] : someOf(rand, 1, all, 0.3);
  const created = Date.UTC(2024, 0, 1) + Math.floor(rand() * 700) * 86400000;
  return {
    cmpId: 2 + Math.floor(rand() * 400), cmpVersion: Math.floor(rand() * 50), consentScreen: 1 + Math.floor(rand() * 5),
    isServiceSpecific: true, useNonStandardTexts: false, purposeOneTreatment: false, publisherCountryCode: "DE",
    consentLanguage: "EN", vendorListVersion: 100 + Math.floor(rand() * 3), tcfPolicyVersion: 5,
    specialFeatureOptins: kind < 0.25 ? [] : [1, 2], purposeConsents: kind < 0.25 ? [] : someOf(rand, 1, 11, 0.8),
    purposeLegitimateInterests: kind < 0.25 ? [] : [2, 7, 8, 9, 10, 11].filter(() => rand() < 0.7),
    vendorConsents: consents, vendorLegitimateInterests: li,
    publisherRestrictions: rand() < 0.2 ? [{ purposeId: 2, restrictionType: 1, vendors: someOf(rand, 1, 200, 0.05) }] : [],
    vendorsDisclosed: rand() < 0.8 ? someOf(rand, 1, all, 0.9) : [],
    created, lastUpdated: created, segments: rand() < 0.8 ? ["core", "vendorsDisclosed"] : ["core"],
  };
}

function generateTcfFile(n, seed, path) {
  const fs = require("fs");
  const rand = prng(seed);
  const start = process.hrtime.bigint();
  const fd = fs.openSync(path, "w");
  let chunk = [];
  for (let i = 0; i < n; i++) {
    chunk.push(encodeTcfFast(realisticModel(rand)));
    if (chunk.length === 10000) { fs.writeSync(fd, chunk.join("\n") + "\n"); chunk = []; }
  }
  if (chunk.length) fs.writeSync(fd, chunk.join("\n") + "\n");
  fs.closeSync(fd);
  return { n, seconds: Number(process.hrtime.bigint() - start) / 1e9 };
}

function checkFastEncoder(n, seed) {
  // The fast path and TCString.encode give the same string for realistic models.
  const rand = prng(seed);
  let same = 0;
  for (let i = 0; i < n; i++) {
    const m = realisticModel(rand);
    if (encodeTcfFast(m) === encodeTcf(m)) same++;
  }
  return { n, same };
}

function benchTcfFile(path) {
  const strings = require("fs").readFileSync(path, "utf8").split("\n").filter((s) => s);
  return benchTcf(strings);
}

const ops = { encode_tcf: (r) => encodeTcf(r.model), decode_tcf: (r) => decodeTcf(r.string),
  encode_gpp: (r) => encodeGpp(r.sections), decode_gpp: (r) => decodeGpp(r.string),
  bench_tcf: (r) => benchTcf(r.strings),
  generate_tcf_file: (r) => generateTcfFile(r.n, r.seed, r.path), bench_tcf_file: (r) => benchTcfFile(r.path),
  check_fast_encoder: (r) => checkFastEncoder(r.n, r.seed) };

const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
rl.on("line", (line) => {
  let reply;
  try {
    const request = JSON.parse(line);
    reply = { ok: ops[request.op](request) };
  } catch (e) {
    reply = { error: String(e && e.message ? e.message : e) };
  }
  process.stdout.write(JSON.stringify(reply) + "\n");
});
