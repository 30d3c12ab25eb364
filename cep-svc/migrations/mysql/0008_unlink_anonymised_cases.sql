-- Anonymised cases leave the person's pseudonym (keep in step with ../sqlite/0008_unlink_anonymised_cases.sql).
--
-- A case anonymised (retention) or erased now gets a random beneficiary name in place of the
-- pseudonym, the keyed hash of the person's identifier: whoever still knows the identifier
-- would otherwise register the person again and find the files under the name it gets back.
-- Cases anonymised before this release still carry the pseudonym; each gets its own random name.
-- Indicators are unaffected: they count the coarse attributes kept on the case row.
UPDATE cases SET pseudonym = LOWER(HEX(RANDOM_BYTES(16))) WHERE state = 4;
