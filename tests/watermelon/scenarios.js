// An agent's day through the real WatermelonDB synchronize() (LokiJS adapter, in Node)
// against a running Doorstep server. Run by tests/watermelon/test_watermelon_client.py:
//   node scenarios.js config.json out.json
// The config names the server, the accounts, the app schema (sync/watermelon.py) and the
// agreement to sign; what each step saw is written to out.json for the test to judge.
'use strict'

const crypto = require('crypto')
const fs = require('fs')
const { Database, Model, appSchema, tableSchema } = require('@nozbe/watermelondb')
const LokiJSAdapter = require('@nozbe/watermelondb/adapters/lokijs').default
const { synchronize } = require('@nozbe/watermelondb/sync')
const { setGenerator } = require('@nozbe/watermelondb/utils/common/randomId')

const config = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'))
const outPath = process.argv[3]
const out = { steps: [] }

// Doorstep's records are keyed by UUID v4: the app's ids are generated as such.
setGenerator(() => crypto.randomUUID())

class Refused extends Error {
  constructor(status, body) {
    super(`HTTP ${status}: ${JSON.stringify(body)}`)
    this.status = status
    this.body = body
  }
}

async function api(method, path, { session, body, headers } = {}) {
  const all = { ...(headers || {}) }
  if (session) {
    all.Authorization = `Bearer ${session.access_token}`
    if (session.device_id) all['X-Device-Id'] = session.device_id
  }
  if (body !== undefined && !(body instanceof Buffer)) all['Content-Type'] = 'application/json'
  const answer = await fetch(config.base_url + path, {
    method,
    headers: all,
    body: body === undefined ? undefined : body instanceof Buffer ? body : JSON.stringify(body),
  })
  const text = await answer.text()
  const parsed = text ? JSON.parse(text) : null
  if (!answer.ok) throw new Refused(answer.status, parsed)
  return parsed
}

async function login(account) {
  const session = await api('POST', '/auth/login', {
    body: { username: account.username, password: account.password },
  })
  return { access_token: session.access_token, device_id: session.user.role === 'agent' ? session.device_id : null }
}

const schema = appSchema({
  version: config.schema.version,
  tables: config.schema.tables.map((table) => tableSchema(table)),
})
const modelClasses = config.schema.tables.map((table) => {
  const M = class extends Model {}
  M.table = table.name
  return M
})
const database = new Database({
  adapter: new LokiJSAdapter({ schema, useWebWorker: false, useIncrementalIndexedDB: false }),
  modelClasses,
})

// The app's whole sync code: two fetch calls handed to synchronize().
const phone = { session: null, pushes: [], pulls: [], loseNextPushAnswer: false }

function sync() {
  return synchronize({
    database,
    pullChanges: async ({ lastPulledAt, schemaVersion, migration }) => {
      const query = new URLSearchParams({
        last_pulled_at: String(lastPulledAt ?? 'null'),
        schema_version: String(schemaVersion),
      })
      if (migration) query.set('migration', JSON.stringify(migration))
      const answer = await api('GET', `/sync/watermelon/pull?${query}`, { session: phone.session })
      phone.pulls.push({ lastPulledAt: lastPulledAt ?? null, timestamp: answer.timestamp })
      return { changes: answer.changes, timestamp: answer.timestamp }
    },
    pushChanges: async ({ changes, lastPulledAt }) => {
      const body = { changes, last_pulled_at: lastPulledAt, device_time: new Date().toISOString() }
      const answer = await api('POST', '/sync/watermelon/push', { session: phone.session, body })
      phone.pushes.push(body)
      if (phone.loseNextPushAnswer) {
        phone.loseNextPushAnswer = false
        throw new Error('the push answer was lost on the way back')
      }
      return { experimentalRejectedIds: answer.experimentalRejectedIds }
    },
  })
}

async function rows(table) {
  const records = await database.get(table).query().fetch()
  return records.map((record) => ({ ...record._raw }))
}

async function create(table, columns, id) {
  let made
  await database.write(async () => {
    made = await database.get(table).create((record) => {
      if (id) record._raw.id = id
      for (const [name, value] of Object.entries(columns)) record._setRaw(name, value)
    })
  })
  return made.id
}

function step(name, data) {
  out.steps.push(name)
  out[name] = data
}

async function main() {
  phone.session = await login(config.agent)
  out.device_id = phone.session.device_id

  // 1. First pull of the day: the visits with their cards.
  await sync()
  const visits = await rows('visits')
  step('first_pull', {
    visits: visits.map((v) => v.id).sort(),
    with_card: visits.filter((v) => v.borrower_id && v.display_name).length,
    columns: Object.keys(visits[0] || {}).sort(),
    timestamp: phone.pulls[0].timestamp,
  })

  // 2. Offline: a badge shown, the ID checked, a report and a signed agreement.
  const a = config.agreement
  const visitId = String(a.visit_id)
  for (const blob of config.blobs) {
    await api('PUT', `/attachments/${blob.sha256}`, {
      session: phone.session,
      body: Buffer.from(blob.base64, 'base64'),
      headers: { 'Content-Type': blob.content_type },
    })
  }
  const now = Date.now()
  const ids = {}
  ids.credential = await create('id_confirmations', {
    visit_id: visitId, device_seq: 1, recorded_at: now - 30 * 60e3,
    confirmation_kind: 'agent_credential', badge_number: config.agent.badge, borrower_acknowledged: true,
  })
  ids.identity = await create('id_confirmations', {
    visit_id: visitId, device_seq: 2, recorded_at: now - 29 * 60e3,
    confirmation_kind: 'borrower_identity', id_last6: config.id_last6,
  })
  ids.report = await create('visit_reports', {
    visit_id: visitId, device_seq: 3, recorded_at: now - 10 * 60e3,
    arrived_at: now - 31 * 60e3, departed_at: now - 10 * 60e3, outcome: 'agreement_signed',
    notes: 'Signed a two-month plan at the door.', third_party_present: false,
    debt_discussed_with_third_party: false, attachments: '[]',
  })
  ids.agreement = await create('agreements', { ...a.columns, visit_id: visitId, device_seq: 4, recorded_at: now - 12 * 60e3 }, a.id)
  const pending = async () =>
    (await Promise.all(['id_confirmations', 'visit_reports', 'agreements', 'contact_attempts'].map(rows)))
      .flat()
      .filter((r) => r._status !== 'synced').length
  step('offline', { ids, pending: await pending() })

  // 3. Push (synchronize pulls, then pushes what is pending).
  await sync()
  step('push', { pending_after: await pending(), pushed_rows: phone.pushes.length })

  // 4. The next sync brings what became of each record.
  await sync()
  const outcomes = Object.fromEntries((await rows('record_outcomes')).map((o) => [o.id, o]))
  const identity = (await rows('id_confirmations')).find((r) => r.id === ids.identity)
  step('outcomes', {
    by_record: Object.fromEntries(
      Object.entries(ids).map(([name, id]) => [name, outcomes[id] && {
        status: outcomes[id].status, kind: outcomes[id].record_kind,
        id_verification: outcomes[id].id_verification, receipt: outcomes[id].receipt ? JSON.parse(outcomes[id].receipt) : null,
      }]),
    ),
    typed_id_left_on_phone: identity ? identity.id_last6 : 'row gone',
    identity_status: identity ? identity._status : null,
  })

  // 5. The dispatcher gives another visit to someone else: it leaves the phone.
  const other = (await rows('visits')).find((v) => v.id !== visitId)
  const dispatcher = await login(config.dispatcher)
  await api('PATCH', `/visits/${other.id}`, {
    session: dispatcher, body: { agent_id: config.other_agent_id }, headers: { 'If-Match': String(other.version) },
  })
  await sync()
  const afterMove = (await rows('visits')).map((v) => v.id)
  await sync() // the next sync presents the timestamp of the pull that deleted it
  step('reassigned', { visit_id: other.id, present_after: afterMove.includes(other.id), visits_left: afterMove.length })

  // 6. A push whose answer is lost is pushed again by the next sync; and replayed by hand.
  ids.contact = await create('contact_attempts', {
    visit_id: visitId, device_seq: 5, recorded_at: Date.now() - 60e3, channel: 'phone_call',
    direction: 'outbound', occurred_at: Date.now() - 2 * 60e3, outcome: 'reached', duration_s: 95,
  })
  phone.loseNextPushAnswer = true
  let lost = null
  try {
    await sync()
  } catch (error) {
    lost = error.message
  }
  const stillPending = await pending()
  await sync()
  const lastPush = phone.pushes[phone.pushes.length - 1]
  const replayed = await api('POST', '/sync/watermelon/push', { session: phone.session, body: lastPush })
  step('replay', {
    contact_id: ids.contact, lost, pending_after_lost_answer: stillPending,
    pending_after_retry: await pending(), replay_answer: replayed, pushes: phone.pushes.length,
  })

  // 7. The phone is revoked: the next sync is refused with device_revoked, and the app wipes.
  const admin = await login(config.admin)
  await api('POST', `/devices/${phone.session.device_id}/revoke`, { session: admin, body: { reason: 'lost in a taxi' } })
  let refusal = null
  try {
    await sync()
  } catch (error) {
    refusal = error instanceof Refused ? { status: error.status, error: error.body.error } : { message: error.message }
  }
  if (refusal && refusal.error && refusal.error.code === 'device_revoked' && refusal.error.details.wipe) {
    await database.write(() => database.unsafeResetDatabase())
  }
  const left = (await Promise.all(config.schema.tables.map((t) => rows(t.name)))).flat().length
  step('revoked', { refusal, rows_left: left })
}

main()
  .then(() => {
    out.ok = true
  })
  .catch((error) => {
    out.ok = false
    out.error = String(error && error.stack ? error.stack : error)
  })
  .finally(() => {
    fs.writeFileSync(outPath, JSON.stringify(out, null, 2))
    process.exit(out.ok ? 0 : 1)
  })
