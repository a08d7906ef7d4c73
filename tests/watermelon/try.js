const { Database, Model, appSchema, tableSchema } = require('@nozbe/watermelondb')
const LokiJSAdapter = require('@nozbe/watermelondb/adapters/lokijs').default
const { synchronize } = require('@nozbe/watermelondb/sync')
const { setGenerator } = require('@nozbe/watermelondb/utils/common/randomId')
console.log(typeof Database, typeof LokiJSAdapter, typeof synchronize, typeof setGenerator)
const schema = appSchema({ version: 1, tables: [tableSchema({ name: 'visits', columns: [{ name: 'x', type: 'string', isOptional: true }] })] })
class Visit extends Model { static table = 'visits' }
const adapter = new LokiJSAdapter({ schema, useWebWorker: false, useIncrementalIndexedDB: false })
const db = new Database({ adapter, modelClasses: [Visit] })
;(async () => {
  await synchronize({ database: db, pullChanges: async () => ({ changes: { visits: { created: [{ id: '1', x: 'a' }], updated: [], deleted: [] } }, timestamp: 5 }), pushChanges: async (a) => { console.log('push', JSON.stringify(a)) } })
  console.log(await db.get('visits').query().fetchCount())
})().catch(e => { console.error('ERR', e); process.exit(1) })
