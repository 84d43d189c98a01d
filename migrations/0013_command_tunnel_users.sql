-- A tunnel opened for commands that name only their agent (RunCommand with
-- agent_id) counts the commands running in it here, so that whichever server
-- of a cluster ends the last of them closes the tunnel, and no server closes
-- it under a command that another server runs in it. NULL: a tunnel opened by
-- the technician, which no command closes. 0: its last command has ended and
-- it is being closed; nothing joins it any more.
ALTER TABLE tunnel_sessions ADD COLUMN command_users integer CHECK (command_users >= 0);
