// The merged arm: alpha from the paper (MERGE rows planned up front) or chosen on the grid (SWEEP ->
// SELECT_ALPHA, whose plan.py chosen adds that alpha's MERGE/ENCODE/EVALUATE rows: the one run-time edge).
// Equal merges are one task: rows are keyed by (source, domain, alpha) and kept once. With --sweep_shards N
// the grid runs as N SWEEP_PART tasks (groups of alpha_lower values) joined by GATHER_GRID into one grid.
include { taskRows; withInputs; withParts; artifactsOf } from './utils'
include { SWEEP                 } from '../../modules/local/sweep'
include { SWEEP as SWEEP_PART   } from '../../modules/local/sweep'
include { GATHER as GATHER_GRID } from '../../modules/local/gather'
include { SELECT_ALPHA } from '../../modules/local/select_alpha'
include { MERGE        } from '../../modules/local/merge'

workflow MERGED_ARM {
    take:
    tasks      // path: PLAN's task folder
    available  // [id, path]: collections, models and training sets

    main:
    SWEEP(withInputs(taskRows(tasks, 'SWEEP'), ['collection', 'domain', 'source'], available))
    SWEEP_PART(withInputs(taskRows(tasks, 'SWEEP_PART'), ['collection', 'domain', 'source'], available))
    GATHER_GRID(withParts(taskRows(tasks, 'GATHER_GRID'), 'parts', artifactsOf(SWEEP_PART.out.grid)))
    ch_grid_dirs = SWEEP.out.grid.mix(GATHER_GRID.out.gathered)
    ch_grids = artifactsOf(ch_grid_dirs)
    SELECT_ALPHA(withInputs(taskRows(tasks, 'SELECT_ALPHA'), ['grid', 'train'], available.mix(ch_grids)))
    ch_chosen = SELECT_ALPHA.out.chosen.map { _row, dir -> dir }
    ch_merge_rows = taskRows(tasks, 'MERGE').mix(taskRows(ch_chosen, 'MERGE')).unique { row -> row.id }
    MERGE(withInputs(ch_merge_rows, ['domain', 'source'], available))

    artifacts = artifactsOf(MERGE.out.model)          // [id, merged model]
    grids     = ch_grid_dirs.map { _row, dir -> dir }  // path: whole grids only (REPORT's heatmaps)
    encode    = taskRows(ch_chosen, 'ENCODE')           // rows added by the grid-chosen alphas
    gather    = taskRows(ch_chosen, 'GATHER_EMBEDDINGS')
    evaluate  = taskRows(ch_chosen, 'EVALUATE')

    emit:
    artifacts
    grids
    encode
    gather
    evaluate
}
