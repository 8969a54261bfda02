// Collections and models: downloaded at a pinned revision (or copied from a local folder in the upstream
// format), or the test profile's tiny pair built over the collection.
include { taskRows; withInputs; artifactsOf } from './utils'
include { PREPARE_COLLECTION } from '../../modules/local/prepare_collection'
include { DOWNLOAD_MODEL     } from '../../modules/local/download_model'
include { MAKE_TINY          } from '../../modules/local/make_tiny'

workflow INPUTS {
    take:
    tasks       // path: PLAN's task folder
    experiment  // path: the experiment file (LOCAL paths are relative to its folder)

    main:
    ch_local = taskRows(tasks, 'LOCAL').map { f -> [f.id, file(experiment.parent.resolve(f.path), checkIfExists: true)] }
    PREPARE_COLLECTION(withInputs(taskRows(tasks, 'PREPARE_COLLECTION'), ['source'], ch_local))
    DOWNLOAD_MODEL(withInputs(taskRows(tasks, 'DOWNLOAD_MODEL'), ['source'], ch_local))
    ch_collections = artifactsOf(PREPARE_COLLECTION.out.collection)
    MAKE_TINY(withInputs(taskRows(tasks, 'MAKE_TINY'), ['collection'], ch_collections))

    artifacts = ch_local.mix(ch_collections, artifactsOf(DOWNLOAD_MODEL.out.model), artifactsOf(MAKE_TINY.out.models))  // [id, path]

    emit:
    artifacts
}
