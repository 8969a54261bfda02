// Encode every model once (with --encode_shards N: N ENCODE tasks per model, joined by GATHER_EMBEDDINGS),
// score every task, and build the report from all of it.
include { taskRows; withInputs; withParts; artifactsOf } from './utils'
include { ENCODE                      } from '../../modules/local/encode'
include { GATHER as GATHER_EMBEDDINGS } from '../../modules/local/gather'
include { EVALUATE } from '../../modules/local/evaluate'
include { REPORT   } from '../../modules/local/report'

workflow SCORING {
    take:
    tasks          // path: PLAN's task folder
    encode_rows    // rows added at run time (grid-chosen merged arms)
    gather_rows
    evaluate_rows
    available      // [id, path]: collections, models, merged models, adapters
    grids          // path: grid folders (empty with paper alphas)

    main:
    ENCODE(withInputs(taskRows(tasks, 'ENCODE').mix(encode_rows).unique { row -> row.id }, ['adapter', 'collection', 'model'], available))
    ch_shards = artifactsOf(ENCODE.out.embeddings)
    GATHER_EMBEDDINGS(withParts(taskRows(tasks, 'GATHER_EMBEDDINGS').mix(gather_rows).unique { row -> row.id }, 'parts', ch_shards))
    ch_embeddings = ch_shards.mix(artifactsOf(GATHER_EMBEDDINGS.out.gathered))
    EVALUATE(withInputs(taskRows(tasks, 'EVALUATE').mix(evaluate_rows), ['collection', 'embeddings'], available.mix(ch_embeddings)))
    REPORT(taskRows(tasks, 'REPORT'), EVALUATE.out.results.map { _row, dir -> dir }.collect(), grids.collect().ifEmpty([]))

    report = REPORT.out.report

    emit:
    report
}
