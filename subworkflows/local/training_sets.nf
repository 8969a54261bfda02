// Labelled training data: hard negatives mined for every labelled query, the full setting's set (all of them
// or a seeded sample) and the limited-data trials v1..vN drawn from it.
include { taskRows; withInputs; artifactsOf } from './utils'
include { PREPARE_TRAINING             } from '../../modules/local/prepare_training'
include { MAKE_TRIALS as SAMPLE_FULL   } from '../../modules/local/make_trials'
include { MAKE_TRIALS                  } from '../../modules/local/make_trials'

workflow TRAINING_SETS {
    take:
    tasks      // path: PLAN's task folder
    available  // [id, path]: collections and models

    main:
    PREPARE_TRAINING(withInputs(taskRows(tasks, 'PREPARE_TRAINING'), ['collection', 'model'], available))
    ch_mined = artifactsOf(PREPARE_TRAINING.out.train)
    SAMPLE_FULL(withInputs(taskRows(tasks, 'SAMPLE_FULL'), ['train'], ch_mined))
    ch_full = ch_mined.mix(artifactsOf(SAMPLE_FULL.out.trials))
    MAKE_TRIALS(withInputs(taskRows(tasks, 'MAKE_TRIALS'), ['train'], ch_full))

    artifacts = ch_full.mix(artifactsOf(MAKE_TRIALS.out.trials))  // [id, training-set folder]

    emit:
    artifacts
}
