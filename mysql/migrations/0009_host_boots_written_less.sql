-- host_boots is no longer rewritten by every batch (sink/src/store/boots.rs).
--
-- A sink writes a boot's row when the boot is new to it, when a batch holds
-- its hello or bye or reaches before its span, and otherwise only once its
-- newest sample is 10 s (REFRESH) past the last_seen stored. So last_seen
-- trails a publishing boot's newest sample by up to 10 s, and live_until
-- becomes last_seen plus the silence plus those 10 s: a boot that keeps
-- publishing stays live between two writes, one that falls silent without a
-- bye stops counting as live 10 s later than before. Rows written before
-- this migration keep their live_until; the next write of a live boot
-- extends it.
--
-- The last_seen index goes: only retention read it, and retention now
-- deletes by live_until, which has its own index for the live_boots view
-- (live_until is last_seen plus the silence, or for a boot that said bye its
-- bye's time). One index fewer to update per row written.

ALTER TABLE host_boots DROP INDEX host_boots_last_seen;
