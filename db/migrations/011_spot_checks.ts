import type { Knex } from 'knex';

/**
 * R4.3: HR's spot checks of training. A spot check is a reproducible random draw of class sessions
 * supervised by one district (the institution's own, R3.9), and one finding per drawn session; a
 * quality problem found is a strike against the institution (R4.4, `strike_id`).
 */
export async function up(k: Knex): Promise<void> {
  await k.schema.createTable('spot_checks', (t) => {
    t.text('id').primary();
    /** Order of drawing (lists are newest first, and a pinned test clock gives equal timestamps). */
    t.bigIncrements('seq', { primaryKey: false });
    t.text('district').notNullable();
    t.text('principal_id').notNullable();
    /** The period whose sessions could be drawn, and the filters the draw was made under. */
    t.timestamp('period_from', { useTz: true }).notNullable();
    t.timestamp('period_to', { useTz: true }).notNullable();
    t.text('mode'); // online | offline | null (both)
    t.text('institution_id');
    t.integer('sample_size').notNullable();
    /** How many sessions were eligible, and the seed that ordered them: the draw can be re-checked. */
    t.integer('candidates').notNullable();
    t.text('seed').notNullable();
    t.text('note');
    t.timestamp('created_at', { useTz: true }).notNullable();
    t.index(['district', 'seq']);
  });

  await k.schema.createTable('spot_check_items', (t) => {
    t.text('spot_check_id').notNullable().references('spot_checks.id');
    t.integer('item_no').notNullable();
    t.text('class_id').notNullable().references('classes.id');
    t.text('session_id').notNullable();
    t.text('institution_id').notNullable();
    t.text('result'); // satisfactory | quality_problem; null until recorded
    t.text('finding_note');
    /** What the session's indicators were when the finding was recorded (evidence kept with it). */
    t.jsonb('indicators_at_finding');
    t.text('finding_by');
    t.timestamp('finding_at', { useTz: true });
    t.text('strike_id');
    t.primary(['spot_check_id', 'item_no']);
    t.unique(['spot_check_id', 'class_id', 'session_id']);
    t.index(['class_id', 'session_id']);
  });
}

export async function down(k: Knex): Promise<void> {
  await k.schema.dropTableIfExists('spot_check_items');
  await k.schema.dropTableIfExists('spot_checks');
}
